"""The controller's kinds (group plinth.dev, version v1) by their plural: one list for the
operator, which runs a loop per kind, and the CLI, which names them as kubectl users do."""
from __future__ import annotations

GROUP, VERSION = "plinth.dev", "v1"
PLURALS = {"gitrepositories": "GitRepository", "kustomizations": "Kustomization",
           "imagerepositories": "ImageRepository", "imagepolicies": "ImagePolicy",
           "imageupdateautomations": "ImageUpdateAutomation", "receivers": "Receiver",
           "providers": "Provider", "alerts": "Alert"}

"""A test's GitOps repository on the real Gitea, with a Provider and an Alert for its
Kustomization `app`: the fixture `on_forge` (registered in conftest.py)."""
from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plinth.forge import RepoRef
from plinth.localenv.forge import LocalForge
from tests.controller.harness import GitOpsRepo, Scenario

CONTEXT = "plinth/default/app"  # the test controller's --cluster-name is the default


@dataclass
class ForgeRepo:
    forge: LocalForge
    ref: RepoRef
    repo: GitOpsRepo

    def statuses(self, sha: str) -> list[dict[str, Any]]:
        """Every status posted on `sha` for CONTEXT, oldest first."""
        request = urllib.request.Request(
            f"{self.forge.url}/api/v1/repos/{self.ref}/statuses/{sha}?limit=50",
            headers={"Authorization": f"token {self.forge.token()}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            found = json.loads(response.read())
        return sorted((s for s in found if s["context"] == CONTEXT), key=lambda s: s["id"])

    def states(self, sha: str) -> list[str]:
        return [s["status"] for s in self.statuses(sha)]


@pytest.fixture
def on_forge(scenario: Scenario, forge: LocalForge, tmp_path: Path) -> Iterator[ForgeRepo]:
    """The scenario's GitOps repository on the forge (public: the controller fetches it
    without a login), with a Provider and an Alert for Kustomization `app`."""
    ns = scenario.namespace
    client = forge.client()
    client.ensure_organization(ns, visibility="public")
    ref = RepoRef(ns, "gitops")
    client.ensure_repository(ref, private=False)
    token = forge.token()
    push_url = forge.clone_url(ns, "gitops").replace(
        "://", f"://{LocalForge.admin}:{token}@", 1)
    scenario.repo = GitOpsRepo(push_url, tmp_path / "forge-work")
    scenario.kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "forge", "namespace": ns},
         "data": {"token": base64.b64encode(token.encode()).decode()}},
        {"apiVersion": "plinth.dev/v1", "kind": "Provider",
         "metadata": {"name": "forge", "namespace": ns},
         "spec": {"type": "gitea", "address": f"{forge.url}/{ref}",
                  "secretRef": {"name": "forge"}}},
        {"apiVersion": "plinth.dev/v1", "kind": "Alert",
         "metadata": {"name": "statuses", "namespace": ns},
         "spec": {"providerRef": {"name": "forge"},
                  "eventSources": [{"kind": "Kustomization", "name": "app"}]}})
    yield ForgeRepo(forge, ref, scenario.repo)
    client.delete_repository(ref)

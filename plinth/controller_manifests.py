"""The sync controller's own install manifests: Namespace, CRDs, RBAC, Deployment, Service.

One generator for both owners of the install: the scaffolded GitOps repo carries them in
`clusters/<cluster>/plinth-system/` (so the controller upgrades itself from git, as
`flux bootstrap` sets up), and the SyncController component applies the same objects once at
bootstrap. Every object is annotated so that the controller never prunes itself.
"""
from __future__ import annotations

import copy
from typing import Any

import yaml

from plinth.schemas import load_crds

NAMESPACE = "plinth-system"
NAME = "plinth-controller"
PROBE_PORT = 8080
RECEIVER_PORT = 9292  # webhook receivers: the forge posts pushes here
_KEEP = {"plinth.dev/prune": "disabled"}
_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "plinth"}
# The pod holds the controller (under 512 MiB, tests/controller/test_hostile_repos.py) and the
# kustomize it runs, bounded by plinth.render.KUSTOMIZE_MEMORY_BYTES (1 GiB): a render that
# hits its bound is refused with a message, not the whole pod OOM-killed.
MEMORY_LIMIT = "1536Mi"


def _meta(name: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(_LABELS), "annotations": dict(_KEEP)}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, namespaced=False)}


def manifests(image: str, pull_secret: str | None = None, role_arn: str | None = None,
              cluster_name: str = "default") -> list[dict[str, Any]]:
    """In apply order. The controller applies whatever its Kustomizations hold, so it is bound
    to cluster-admin, as Flux's kustomize-controller is."""
    with_crds = []
    for crd in map(copy.deepcopy, load_crds()):  # the parsed CRDs are shared
        crd["metadata"].setdefault("annotations", {}).update(_KEEP)
        with_crds.append(crd)
    return [
        namespace(),
        *with_crds,
        _service_account(role_arn),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(NAME, namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        deployment(image, pull_secret, cluster_name),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME),
         "spec": {"selector": {"app.kubernetes.io/name": NAME},
                  "ports": [{"name": "http-metrics", "port": PROBE_PORT,
                             "targetPort": "http-metrics"},
                            {"name": "http-webhook", "port": 80, "targetPort": "http-webhook"}]}},
    ]


def _service_account(role_arn: str | None) -> dict[str, Any]:
    meta = _meta(NAME)
    if role_arn:  # EKS: IRSA lets the controller read ECR without a static key
        meta["annotations"]["eks.amazonaws.com/role-arn"] = role_arn
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def deployment(image: str, pull_secret: str | None, cluster_name: str = "default"
               ) -> dict[str, Any]:
    """`cluster_name` names this cluster in the commit statuses the controller posts."""
    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http-metrics"}, "periodSeconds": 10}

    pod: dict[str, Any] = {
        "serviceAccountName": NAME,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "controller", "image": image,
            "args": [f"--probe-port={PROBE_PORT}", f"--receiver-port={RECEIVER_PORT}",
                     f"--cluster-name={cluster_name}"],
            "ports": [{"name": "http-metrics", "containerPort": PROBE_PORT},
                      {"name": "http-webhook", "containerPort": RECEIVER_PORT}],
            "livenessProbe": probe("/healthz"), "readinessProbe": probe("/readyz"),
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"memory": MEMORY_LIMIT}},
            "securityContext": {"allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                     "strategy": {"type": "Recreate"},  # never two controllers at once
                     "template": {"metadata": {"labels": dict(_LABELS)}, "spec": pod}}}


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)

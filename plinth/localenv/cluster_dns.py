"""Cluster DNS for the local node: CoreDNS as a Deployment in kube-system behind 10.96.0.10.

The same shape kubeadm and kind install (ServiceAccount, RBAC, Corefile ConfigMap, Deployment,
`kube-dns` Service), so `<service>.<namespace>.svc.cluster.local` resolves in every pod. The
image is ours, preloaded into the node (no registry is needed to start a cluster).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from plinth.localenv.tools import find_tool

NAMESPACE = "kube-system"
NAME = "coredns"
FIELD_MANAGER = "plinth-local"
_LABELS = {"k8s-app": "kube-dns"}

COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes DOMAIN in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    reload
    loadbalance
}
"""


def manifests(image: str, service_ip: str, domain: str) -> list[dict[str, Any]]:
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": dict(_LABELS)}
    pod = {
        "serviceAccountName": NAME,
        "priorityClassName": "system-cluster-critical",
        "dnsPolicy": "Default",  # CoreDNS itself forwards to the host's resolver
        "containers": [{
            "name": "coredns", "image": image, "imagePullPolicy": "IfNotPresent",
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                              "initialDelaySeconds": 10, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                               "periodSeconds": 2},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                          "limits": {"memory": "128Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns",
                              "readOnly": True}],
        }],
        "volumes": [{"name": "config", "configMap": {"name": NAME}}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"system:{NAME}"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods",
                                                     "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"system:{NAME}"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"system:{NAME}"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"Corefile": COREFILE.replace("DOMAIN", domain)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": 1, "selector": {"matchLabels": dict(_LABELS)},
                  "template": {"metadata": {"labels": dict(_LABELS)}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {**meta, "name": "kube-dns"},
         "spec": {"clusterIP": service_ip, "selector": dict(_LABELS),
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}},
    ]


def install(kubeconfig: Path, image: str, service_ip: str, domain: str,
            timeout: float = 120.0) -> None:
    """Apply (server-side, idempotent) and wait until CoreDNS answers its readiness probe."""
    kubectl = [str(find_tool("kubectl")), f"--kubeconfig={kubeconfig}"]
    docs = yaml.safe_dump_all(manifests(image, service_ip, domain), sort_keys=False)
    _run([*kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
          "--force-conflicts", "-f", "-"], docs)
    _run([*kubectl, "-n", NAMESPACE, "rollout", "status", f"deployment/{NAME}",
          f"--timeout={int(timeout)}s"], "")


class ClusterDnsError(Exception):
    """CoreDNS could not be installed or did not become ready."""


def _run(argv: list[str], stdin: str) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterDnsError(f"cluster DNS: {' '.join(argv[2:5])}: {proc.stderr.strip()}")

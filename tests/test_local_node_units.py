"""The node's pieces that need no root: what the preflight says, what CoreDNS is made of, and
what a refused host changes (nothing)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plinth.localenv import cluster_dns, registry_login
from plinth.localenv.cluster import LocalCluster
from plinth.localenv.node import CLUSTER_DNS_IP, NodeUnavailable, preflight
from plinth.schemas import validate_objects


def test_preflight_names_every_missing_piece(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("PLINTH_TOOLS_BIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    problems = preflight()
    assert any(p.startswith("not root") and "plinth:cluster.node: false" in p for p in problems)
    assert "kubelet is not installed (run scripts/setup)" in problems
    assert "containerd is not installed (run scripts/setup)" in problems


def test_a_host_that_cannot_run_a_node_is_refused_before_anything_starts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    cluster = LocalCluster(tmp_path / "cluster", node=True)
    with pytest.raises(NodeUnavailable, match="this host cannot run a Kubernetes node") as err:
        cluster.start()
    assert "not root" in str(err.value)
    assert not (tmp_path / "cluster" / "etcd.pid").exists()  # no control plane either


def test_cluster_dns_objects_are_valid_kubernetes() -> None:
    objects = cluster_dns.manifests("plinth.local/coredns:1.12.4", CLUSTER_DNS_IP,
                                    "cluster.local")
    assert validate_objects(objects, "cluster DNS", []) == []
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert service["metadata"]["name"] == "kube-dns"
    assert service["spec"]["clusterIP"] == CLUSTER_DNS_IP
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in config["data"]["Corefile"]


def test_the_registry_login_provider_answers_only_for_its_registries(tmp_path: Path) -> None:
    logins = tmp_path / "logins.json"
    registry_login.add_login(logins, "10.244.0.1:5000", "plinth", "s3cret")
    assert logins.stat().st_mode & 0o077 == 0
    assert registry_login.hosts(logins) == ["10.244.0.1:5000"]
    ours = registry_login.response(
        {"image": "10.244.0.1:5000/plinth/web:1.0.0"}, json.loads(logins.read_text()))
    assert ours["auth"] == {"10.244.0.1:5000": {"username": "plinth", "password": "s3cret"}}
    assert ours["kind"] == "CredentialProviderResponse" and ours["cacheKeyType"] == "Registry"
    other = registry_login.response({"image": "ghcr.io/acme/web:1"},
                                    json.loads(logins.read_text()))
    assert other["auth"] == {}

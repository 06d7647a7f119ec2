"""Cluster: where the platform runs. Outputs a kubeconfig (secret) and the Kubernetes provider
every other component uses.

- `local`: etcd + kube-apiserver + kube-controller-manager + kube-scheduler on this machine and
  one node (kubelet, containerd, bridge CNI, kube-proxy, CoreDNS) that runs the pods; with
  `node: false`, the control plane alone (objects are stored and served, nothing runs).
- `kind`: a kind cluster (the `kind` CLI and Docker must exist).
- `kubeconfig`: adopt an existing cluster by kubeconfig file and context.
- `eks`: see `components/eks.py`.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from components.eks import EksCluster
from components.local_servers import LocalServer
from plinth.stack_config import ClusterConfig


@dataclass(frozen=True)
class ClusterArgs:
    name: str
    config: ClusterConfig
    state_dir: Path  # local state of this stack (the local control plane lives here)


class Cluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    local_kubeconfig_path: pulumi.Output[str] | None  # set for `local`: the controller process
    host_address: pulumi.Output[str] | None  # `local`: where servers that pods reach listen
    local_state_dir: str | None  # `local` with a node: its state (containerd trusts registries)

    def __init__(self, name: str, args: ClusterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kind = args.config.kind
        self.local_kubeconfig_path = None
        self.host_address = None
        self.local_state_dir = None
        self.eks: EksCluster | None = None  # for IRSA: its OIDC provider
        if kind == "local":
            state = str(args.state_dir / "control-plane")
            plane = LocalServer(f"{name}-control-plane", "control-plane", state,
                                node=args.config.node, opts=child)
            kubeconfig = plane.kubeconfig
            self.local_kubeconfig_path = plane.kubeconfig_path
            self.host_address = plane.address
            self.local_state_dir = state if args.config.node else None
        elif kind == "kubeconfig":
            path = Path(str(args.config.kubeconfig)).expanduser()
            if not path.exists():
                raise ValueError(f"plinth:cluster.kubeconfig: {path} does not exist")
            kubeconfig = pulumi.Output.secret(path.read_text())
        elif kind == "kind":
            kubeconfig = KindCluster(f"{name}-kind", args.name, opts=child).kubeconfig
        else:
            self.eks = EksCluster(f"{name}-eks", args.name, args.config, opts=child)
            kubeconfig = self.eks.kubeconfig
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                     context=args.config.context, opts=child)
        self.register_outputs({"kubeconfig": self.kubeconfig})


class KindClusterProvider(ResourceProvider):
    """`kind create cluster` / `kind delete cluster`; the kubeconfig is the create's output."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        kind = shutil.which("kind")
        if kind is None:
            raise RuntimeError("cluster kind 'kind' needs the kind CLI on PATH (and Docker)")
        subprocess.run([kind, "create", "cluster", "--name", props["cluster_name"],
                        "--wait", "180s"], check=True, capture_output=True, text=True)
        kubeconfig = subprocess.run([kind, "get", "kubeconfig", "--name", props["cluster_name"]],
                                    check=True, capture_output=True, text=True).stdout
        return CreateResult(id_=props["cluster_name"], outs={**props, "kubeconfig": kubeconfig})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("cluster_name") != news.get("cluster_name")
        return DiffResult(changes=changed, replaces=["cluster_name"] if changed else [],
                          delete_before_replace=True)

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        kind = shutil.which("kind")
        if kind is not None:
            subprocess.run([kind, "delete", "cluster", "--name", id_], check=True,
                           capture_output=True, text=True)


class KindCluster(Resource):
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, cluster_name: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(KindClusterProvider(), name,
                         {"cluster_name": cluster_name, "kubeconfig": None},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                             additional_secret_outputs=["kubeconfig"])))

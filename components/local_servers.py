"""Servers of the `local` stack as Pulumi resources: the cluster (control plane and node), the
forge (Gitea) or plain git server, the registry and the development controller process, each a
Python dynamic provider over `plinth.localenv`.

create starts the server and reports its endpoints; a later `up` finds it running and changes
nothing, or restarts it (after a reboot) as an update; delete stops it and removes its state.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider
from pulumi.dynamic import UpdateResult

from plinth.localenv.cluster import LocalCluster
from plinth.localenv.controller import LocalController
from plinth.localenv.forge import LocalForge
from plinth.localenv.githttp import GitHttpServer
from plinth.localenv.registry import LocalRegistry

SECRET_OUTPUTS = ["kubeconfig", "password"]


def _server(kind: str, state_dir: str, props: dict[str, Any]) -> Any:
    path = Path(state_dir)
    if kind == "control-plane":
        return LocalCluster(path, node=bool(props.get("node")))
    if kind == "git":
        return GitHttpServer(path, address=props.get("address") or "127.0.0.1")
    if kind == "forge":
        return LocalForge(path, address=props.get("address") or "127.0.0.1")
    if kind == "registry":
        return LocalRegistry(path, address=props.get("address") or "127.0.0.1")
    if kind == "controller":
        return LocalController(path, Path(props["kubeconfig_path"]))
    raise ValueError(f"unknown local server kind {kind!r}")


def _outputs(kind: str, server: Any, props: dict[str, Any]) -> dict[str, Any]:
    outs: dict[str, Any] = {"kind": kind, "state_dir": props["state_dir"]}
    if kind == "control-plane":
        outs.update(kubeconfig=server.kubeconfig.read_text(),
                    kubeconfig_path=str(server.kubeconfig), endpoint=server.server,
                    node=props.get("node"), address=server.host_address)
    elif kind == "git":
        user, password = server.credentials()
        outs.update(endpoint=server.url(""), username=user, password=password,
                    address=props.get("address"))
    elif kind == "forge":
        # one token for the stack: Pulumi's pushes, the controller's fetches and statuses
        outs.update(endpoint=server.url, username=LocalForge.admin,
                    password=server.token("stack"), address=props.get("address"))
    elif kind == "registry":
        user, password = server.credentials()
        outs.update(endpoint=server.host, username=user, password=password,
                    address=props.get("address"), cluster_state_dir=props.get("cluster_state_dir"))
    elif kind == "controller":
        outs.update(kubeconfig_path=props["kubeconfig_path"],
                    endpoint=f"http://127.0.0.1:{server.port}")
    return outs


def _start(server: Any, props: dict[str, Any], *, fresh: bool) -> None:
    """Start; a registry that pods pull from is made known to the node's containerd.

    A failed start leaves nothing running (Pulumi records no resource to destroy later): a fresh
    server is destroyed, a restarted one only stopped, its data kept."""
    try:
        server.start()
    except BaseException:
        server.destroy() if fresh else server.stop()
        raise
    if props["kind"] == "registry" and props.get("cluster_state_dir"):
        node = LocalCluster(Path(props["cluster_state_dir"])).node
        assert node is not None
        node.trust_registry(server.host, *server.credentials())


class LocalServerProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        server = _server(props["kind"], props["state_dir"], props)
        _start(server, props, fresh=True)
        return CreateResult(id_=f"{props['kind']}:{props['state_dir']}",
                            outs=_outputs(props["kind"], server, props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # kubeconfig_path is an input of the controller and an output of the control plane
        keys = ("kind", "state_dir", "kubeconfig_path", "node", "address", "cluster_state_dir")
        replaces = [k for k in keys
                    if news.get(k) is not None and olds.get(k) != news.get(k)]
        stopped = not _server(olds["kind"], olds["state_dir"], olds).running()
        return DiffResult(changes=bool(replaces) or stopped, replaces=replaces,
                          delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        server = _server(news["kind"], news["state_dir"], news)
        _start(server, news, fresh=False)  # it stopped (a reboot, say): again on its old ports
        return UpdateResult(outs=_outputs(news["kind"], server, news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _server(props["kind"], props["state_dir"], props).destroy()


class LocalServer(Resource):
    """`kind`: control-plane | forge | git | registry | controller. Secret outputs stay secret.

    `node` (control-plane): run a node too; `address` (forge, git, registry): where to listen, the
    cluster's host address; `cluster_state_dir` (registry): the node that pulls from it."""

    endpoint: pulumi.Output[str]
    state_dir: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kubeconfig_path: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(self, name: str, kind: str, state_dir: str,
                 kubeconfig_path: pulumi.Input[str] | None = None, *,
                 node: bool | None = None, address: pulumi.Input[str] | None = None,
                 cluster_state_dir: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"kind": kind, "state_dir": state_dir, "kubeconfig_path": kubeconfig_path,
                 "node": node, "address": address, "cluster_state_dir": cluster_state_dir,
                 "endpoint": None, "kubeconfig": None, "username": None, "password": None}
        super().__init__(LocalServerProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)))


class BareRepositoryProvider(ResourceProvider):
    """A bare git repository in the local git server's folder; delete removes it."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        server = GitHttpServer(Path(props["server_state_dir"]))
        path = server.create_repository(props["name"], default_branch=props["branch"])
        return CreateResult(id_=str(path), outs={**props, "url": server.url(props["name"])})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("server_state_dir", "name", "branch")
        replaces = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces,
                          delete_before_replace=True)

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        shutil.rmtree(id_, ignore_errors=True)


class BareRepository(Resource):
    url: pulumi.Output[str]

    def __init__(self, name: str, server_state_dir: pulumi.Input[str], repo_name: str,
                 branch: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BareRepositoryProvider(), name,
                         {"server_state_dir": server_state_dir, "name": repo_name,
                          "branch": branch, "url": None}, opts)

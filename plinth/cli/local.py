"""`plinth local`: a local cluster on a machine without Docker (what kind gives with Docker)."""
from __future__ import annotations

from pathlib import Path

import click

from plinth.localenv.cluster import LocalCluster
from plinth.localenv.cluster_dns import ClusterDnsError
from plinth.localenv.node import NodeUnavailable
from plinth.localenv.process import ServerStartError
from plinth.localenv.tools import ToolMissing

DEFAULT_STATE = Path(".plinth") / "local"


@click.group()
def local() -> None:
    """Run a local cluster: etcd + kube-apiserver + kube-controller-manager + kube-scheduler,
    and one node (kubelet, containerd, bridge CNI, kube-proxy, CoreDNS) that runs pods.

    The node needs root; `--no-node` runs the control plane alone, where objects are stored,
    validated and garbage-collected for real but no container starts.
    """


state_option = click.option(
    "--state", "state", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE,
    show_default=True, help="Folder for data, certificates, logs and the admin kubeconfig.",
)
node_option = click.option("--node/--no-node", default=True, show_default=True,
                           help="Run a node, so that pods run.")


def _cluster(state: Path, node: bool) -> LocalCluster:
    return LocalCluster((state / "controlplane").absolute(), node=node)


@local.command()
@state_option
@node_option
def start(state: Path, node: bool) -> None:
    """Start (or find running) the cluster and print its kubeconfig path.

    \b
    Example:
      plinth local start && kubectl --kubeconfig .plinth/local/controlplane/admin.kubeconfig get nodes
    """
    cluster = _cluster(state, node)
    try:
        cluster.start()
    except (ToolMissing, ServerStartError, NodeUnavailable, ClusterDnsError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(cluster.kubeconfig.resolve()))


@local.command()
@state_option
def stop(state: Path) -> None:
    """Stop the cluster and undo what its node changed on the host; data stays for a start."""
    _cluster(state, node=(state / "controlplane" / "node").exists()).stop()


@local.command()
@state_option
def status(state: Path) -> None:
    """Say whether the cluster runs, and where."""
    cluster = _cluster(state, node=(state / "controlplane" / "node").exists())
    if cluster.running():
        click.echo(f"running at {cluster.server}; kubeconfig {cluster.kubeconfig}")
    else:
        click.echo("stopped")
        raise SystemExit(1)

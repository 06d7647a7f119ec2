"""`plinth local`: a local cluster on a machine without Docker (what kind gives with Docker)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from typing import TYPE_CHECKING

from plinth.cli.output import UserError

if TYPE_CHECKING:  # the cluster's certificates and processes load when a command runs
    from plinth.localenv.cluster import LocalCluster

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
    from plinth.localenv.cluster import LocalCluster

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
    from plinth.localenv.cluster_dns import ClusterDnsError
    from plinth.localenv.node import NodeUnavailable
    from plinth.localenv.process import ServerStartError
    from plinth.localenv.tools import ToolMissing

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


@local.command("push-image")
@click.argument("name", type=click.Choice(["sample-app", "controller"]))
@click.argument("version")
@click.argument("repository", metavar="HOST[:PORT]/REPOSITORY")
@click.option("--username", help="The registry login's user.")
@click.option("--password-env", default="PLINTH_REGISTRY_PASSWORD", show_default=True,
              metavar="VAR", help="The environment variable holding its password.")
@click.option("--insecure", is_flag=True, help="The registry speaks plain HTTP.")
def push_image(name: str, version: str, repository: str, username: str | None,
               password_env: str, insecure: bool) -> None:
    """Build image NAME at VERSION without Docker and push it as REPOSITORY:VERSION: what CI
    does for an app on a machine with no Docker engine. Prints the digest.

    \b
    Example:
      plinth local push-image sample-app 1.0.1 10.244.0.1:5000/plinth/web --insecure \\
          --username plinth --password-env REGISTRY_PASSWORD
    """
    from plinth.oci import builds  # the image builder only where an image is built
    from plinth.oci.push import Registry, RegistryError

    host, _, path = repository.partition("/")
    if not path or "." not in host and ":" not in host and host != "localhost":
        raise click.BadParameter(f"{repository!r}: expected HOST[:PORT]/REPOSITORY",
                                 param_hint="REPOSITORY")
    password = os.environ.get(password_env) if username else None
    if username and not password:
        raise UserError(f"--username {username}: set its password in {password_env}")
    try:
        digest = Registry(host, path, username, password, insecure=insecure).push(
            builds.build(name, version), version)
    except (builds.ImageBuildError, RegistryError, OSError) as err:
        raise UserError(f"push {repository}:{version}: {err}") from None
    click.echo(f"{repository}:{version}@{digest}")

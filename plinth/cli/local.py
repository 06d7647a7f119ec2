"""`plinth local`: the loopback servers a machine without Docker uses as its cluster."""
from __future__ import annotations

from pathlib import Path

import click

from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.process import ServerStartError
from plinth.localenv.tools import ToolMissing

DEFAULT_STATE = Path(".plinth") / "local"


@click.group()
def local() -> None:
    """Run a local control plane (etcd + kube-apiserver + kube-controller-manager).

    No kubelet runs: objects are stored, validated and garbage-collected for real, but no
    container starts. Enough for GitOps syncs and Pulumi programs on a laptop or in CI.
    """


state_option = click.option(
    "--state", "state", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE,
    show_default=True, help="Folder for data, certificates, logs and the admin kubeconfig.",
)


@local.command()
@state_option
def start(state: Path) -> None:
    """Start (or find running) the control plane and print its kubeconfig path.

    \b
    Example:
      plinth local start && kubectl --kubeconfig .plinth/local/controlplane/admin.kubeconfig get ns
    """
    plane = LocalControlPlane(state / "controlplane")
    try:
        plane.start()
    except (ToolMissing, ServerStartError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(plane.kubeconfig.resolve()))


@local.command()
@state_option
def stop(state: Path) -> None:
    """Stop the control plane; its data stays for the next start."""
    LocalControlPlane(state / "controlplane").stop()


@local.command()
@state_option
def status(state: Path) -> None:
    """Say whether the control plane runs, and where."""
    plane = LocalControlPlane(state / "controlplane")
    if plane.running():
        click.echo(f"running at {plane.server}; kubeconfig {plane.kubeconfig}")
    else:
        click.echo("stopped")
        raise SystemExit(1)

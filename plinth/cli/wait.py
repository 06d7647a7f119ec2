"""`plinth wait`: block until the cluster has applied a revision and is healthy."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape

from plinth.cli.forge_options import ForgeTarget, forge_options, forge_target, stack_outputs
from plinth.cli.kubectl import list_plinth_objects
from plinth.cli.output import UserError, console, err_console
from plinth.forge import ForgeError
from plinth.stack_outputs import StackOutputError
from plinth.wait import Check, kustomization_checks, parse_duration, status_checks, wait


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _from_cluster(kubeconfig: str | None, names: tuple[str, ...], sha: str) -> list[Check]:
    return kustomization_checks(list_plinth_objects(kubeconfig, None, "kustomizations"),
                                names, sha)


@contextmanager
def _stack_kubeconfig(project: Path, stack: str) -> Iterator[str]:
    """The stack's kubeconfig output in a file only this user reads, for the wait's length."""
    try:
        text = stack_outputs(project, stack).kubeconfig()
    except StackOutputError as err:
        raise UserError(str(err)) from None
    fd, path = tempfile.mkstemp(prefix="plinth-kubeconfig-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        yield path
    finally:
        os.unlink(path)


def _from_forge(forge: ForgeTarget, contexts: tuple[str, ...], sha: str) -> list[Check]:
    try:
        return status_checks(forge.client.combined_status(forge.repo, sha), contexts)
    except ForgeError as err:
        raise UserError(forge.scrub(str(err))) from None


@click.command("wait")
@click.option("--revision", "sha", required=True, metavar="SHA",
              help="The git commit to wait for (whole, or at least 7 characters).")
@click.option("--kustomization", "names", multiple=True, metavar="NS/NAME",
              help="A Kustomization to wait for (repeat; a bare NAME is in plinth-system); "
                   "default: every Kustomization in the cluster.")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), envvar="KUBECONFIG")
@click.option("--timeout", default="5m", show_default=True, metavar="DURATION",
              help="Give up after this long (30s, 5m, 1h30m).")
@forge_options
@click.option("--context", "contexts", multiple=True, metavar="plinth/CLUSTER/NAME",
              help="With a forge: the commit status context to wait for (repeat).")
def wait_command(sha: str, names: tuple[str, ...], kubeconfig: str | None, timeout: str,
                 stack: str | None, project: Path, forge_url: str | None, forge_kind: str,
                 repository: str | None, token_env: str, contexts: tuple[str, ...]) -> None:
    """Wait until revision SHA is applied and healthy: exit 0, or 1 with the reason.

    Reads the Kustomizations' status (lastAppliedRevision at SHA and Ready=True). A
    Kustomization that is Ready=False or Stalled on SHA ends the wait at once with the reason
    the controller wrote. Without access to the cluster, --forge-url, --repository and
    --context read the commit statuses the controller posts on SHA instead: success is done,
    failure or error ends the wait with the status's description. --stack NAME takes the
    kubeconfig (or, with --context, the forge) from that stack's outputs. Exit 2 on a usage
    error.

    \b
    Examples:
      plinth wait --revision 1a2b3c4 --kustomization plinth-system/apps --timeout 10m
      plinth wait --revision 1a2b3c4 --forge-url http://127.0.0.1:3000 \\
          --repository acme/gitops --context plinth/local/apps
      plinth wait --revision 1a2b3c4 --stack local --kustomization apps
    """
    seconds = _duration(timeout)
    if len(sha) < 7:
        raise UserError(f"--revision {sha!r}: give at least 7 characters of the commit")
    if stack is not None and not contexts:  # the cluster, by the stack's kubeconfig
        with _stack_kubeconfig(project, stack) as path:
            outcome = wait(lambda: _from_cluster(path, names, sha), seconds)
    else:
        forge = forge_target(forge_url, forge_kind, repository, token_env, stack, project)
        if forge is not None and not contexts:
            raise UserError("with a forge, name the commit status to wait for with --context "
                            "plinth/<cluster>/<kustomization>")
        if forge is None and contexts:
            raise UserError("--context reads commit statuses: it needs --forge-url and "
                            "--repository, or --stack")
        outcome = wait((lambda: _from_forge(forge, contexts, sha)) if forge is not None
                       else (lambda: _from_cluster(kubeconfig, names, sha)), seconds)
    if not outcome.ok:
        err_console.print(f"[bold red]failed:[/] {escape(outcome.message)}")
        raise SystemExit(1)
    console.print(escape(outcome.message))

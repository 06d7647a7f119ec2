"""`plinth reconcile`: ask the controller to reconcile an object now and wait for the result."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click
from rich.markup import escape

from plinth.cli.kinds import KINDS, kind_option
from plinth.cli.kubectl import annotate, get_plinth_object
from plinth.cli.output import UserError, console, err_console
from plinth.reconcile_request import REQUESTED_AT
from plinth.wait import DEFAULT_NAMESPACE, Check, judge_request, parse_duration, wait


def _request(kubeconfig: str | None, namespace: str, plural: str, name: str,
             timeout: float) -> tuple[dict[str, Any], bool, str]:
    """Annotate, wait for the controller's answer; (the object, ok, message)."""
    obj = get_plinth_object(kubeconfig, namespace, plural, name)
    if obj is None:
        raise UserError(f"{plural}.plinth.dev {namespace}/{name} not found")
    if (obj.get("spec") or {}).get("suspend"):
        raise UserError(f"{obj['kind']} {namespace}/{name} is suspended: resume it first "
                        "(spec.suspend: false)")
    token = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    annotate(kubeconfig, namespace, plural, name, REQUESTED_AT, token)
    latest: dict[str, Any] = obj

    def poll() -> list[Check]:
        nonlocal latest
        current = get_plinth_object(kubeconfig, namespace, plural, name)
        if current is None:
            raise UserError(f"{obj['kind']} {namespace}/{name} was deleted while reconciling")
        latest = current
        return [judge_request(current, token)]
    outcome = wait(poll, timeout)
    return latest, outcome.ok, outcome.message


@click.command("reconcile")
@kind_option
@click.argument("name")
@click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True)
@click.option("--with-source", is_flag=True,
              help="Kustomization or ImageUpdateAutomation: fetch its GitRepository first.")
@click.option("--timeout", default="5m", show_default=True, metavar="DURATION")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), envvar="KUBECONFIG")
def reconcile_command(kind: str, name: str, namespace: str, with_source: bool, timeout: str,
                      kubeconfig: str | None) -> None:
    """Reconcile KIND NAME now (not at its interval) and wait for the outcome: exit 0 when it
    is Ready, 1 with the controller's reason when it failed or the timeout passed.

    \b
    Examples:
      plinth reconcile kustomization apps --with-source
      plinth reconcile gitrepository gitops -n plinth-system --timeout 1m
    """
    try:
        seconds = parse_duration(timeout)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--timeout") from None
    plural = KINDS[kind]
    if with_source:
        if plural not in ("kustomizations", "imageupdateautomations"):
            raise UserError("--with-source is for a Kustomization or an ImageUpdateAutomation")
        obj = get_plinth_object(kubeconfig, namespace, plural, name)
        if obj is None:
            raise UserError(f"{plural}.plinth.dev {namespace}/{name} not found")
        ref = (obj.get("spec") or {}).get("sourceRef") or {}
        source_ns = ref.get("namespace") or namespace
        _, ok, message = _request(kubeconfig, source_ns, "gitrepositories", ref.get("name", ""),
                                  seconds)
        if not ok:
            err_console.print(f"[bold red]source failed:[/] {escape(message)}")
            raise SystemExit(1)
        console.print(escape(f"source: {message}"))
    _, ok, message = _request(kubeconfig, namespace, plural, name, seconds)
    if not ok:
        err_console.print(f"[bold red]failed:[/] {escape(message)}")
        raise SystemExit(1)
    console.print(escape(message))

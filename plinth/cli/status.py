"""`plinth status`: every Plinth object of a cluster and how it is doing, like `flux get all`."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from plinth.cli.kinds import KINDS
from plinth.cli.kubectl import list_plinth_objects
from plinth.cli.output import console, echo_raw
from plinth.kinds import PLURALS

def _revision(obj: dict[str, Any]) -> str:
    """What the object is at: a git revision, a tag count, an image, a push."""
    status = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "GitRepository":
        return str((status.get("artifact") or {}).get("revision") or "")
    if kind == "Kustomization":
        return str(status.get("lastAppliedRevision") or "")
    if kind == "ImageRepository":
        count = (status.get("lastScanResult") or {}).get("tagCount")
        return "" if count is None else f"{count} tags"
    if kind == "ImagePolicy":
        latest = status.get("latestRef") or {}
        return f"{latest['name']}:{latest['tag']}" if latest.get("tag") else ""
    if kind == "ImageUpdateAutomation":
        pushed = str(status.get("lastPushCommit") or "")[:12]
        return " ".join(p for p in (pushed, str(status.get("pullRequest") or "")) if p)
    return ""


def _age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return ""
    seconds = int((now - datetime.fromisoformat(timestamp.replace("Z", "+00:00")))
                  .total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def row(obj: dict[str, Any], now: datetime) -> dict[str, str]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") == "Ready"), {})
    return {"kind": str(obj.get("kind", "")), "namespace": str(meta.get("namespace", "")),
            "name": str(meta.get("name", "")),
            "ready": "Suspended" if (obj.get("spec") or {}).get("suspend")
            else str(ready.get("status", "Unknown")),
            "revision": _revision(obj), "age": _age(meta.get("creationTimestamp"), now),
            "message": str(ready.get("message", "not reconciled yet"))}


def rows(kubeconfig: str | None, namespace: str | None, plurals: tuple[str, ...]
         ) -> list[dict[str, str]]:
    now = datetime.now(timezone.utc)
    order = {PLURALS[plural]: index for index, plural in enumerate(plurals)}
    found = list_plinth_objects(kubeconfig, namespace, *plurals)
    found.sort(key=lambda o: (order.get(o.get("kind", ""), len(order)),
                              o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return [row(obj, now) for obj in found]


def _table(found: list[dict[str, str]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("KIND", "NAMESPACE/NAME", "READY", "REVISION", "AGE", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for r in found:
        colour = {"True": "green", "False": "red"}.get(r["ready"], "yellow")
        table.add_row(r["kind"], escape(f"{r['namespace']}/{r['name']}"),
                      f"[{colour}]{r['ready']}[/]", escape(r["revision"]), r["age"],
                      escape(r["message"]))
    return table


@click.command("status")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(sorted(KINDS), case_sensitive=False),
              help="Only this kind (repeat); default: every Plinth kind.")
@click.option("-n", "--namespace", help="Only this namespace (default: all).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("-w", "--watch", is_flag=True,
              help="Then print each object again whenever its state changes (Ctrl-C ends).")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), envvar="KUBECONFIG")
def status_command(kinds: tuple[str, ...], namespace: str | None, output: str, watch: bool,
                   kubeconfig: str | None) -> None:
    """Every GitRepository, Kustomization, image, receiver and notification object of the
    cluster: Ready, the revision (or image, or tag count) it is at, age and message. Exit 1
    when any shown object is not Ready (suspended ones aside), as a check would want.

    \b
    Examples:
      plinth status
      plinth status --kind kustomization -n plinth-system --watch
    """
    plurals = tuple(KINDS[k.lower()] for k in kinds) or tuple(PLURALS)
    found = rows(kubeconfig, namespace, plurals)
    if output == "json":
        echo_raw(json.dumps(found, indent=2) + "\n")
    else:
        console.print(_table(found))
    if watch:
        _watch(kubeconfig, namespace, plurals, found, output)
    if any(r["ready"] not in ("True", "Suspended") for r in found):
        raise SystemExit(1)


def _watch(kubeconfig: str | None, namespace: str | None, plurals: tuple[str, ...],
           shown: list[dict[str, str]], output: str) -> None:
    """Poll every 2 s; print the objects whose state changed (age aside), or went away."""
    def state(r: dict[str, str]) -> tuple[str, ...]:
        return r["ready"], r["revision"], r["message"]
    last = {(r["kind"], r["namespace"], r["name"]): state(r) for r in shown}
    try:
        while True:
            time.sleep(2.0)
            current = rows(kubeconfig, namespace, plurals)
            keys = {(r["kind"], r["namespace"], r["name"]): r for r in current}
            changed = [r for key, r in keys.items() if last.get(key) != state(r)]
            gone = [{"kind": k[0], "namespace": k[1], "name": k[2], "ready": "Deleted",
                     "revision": "", "age": "", "message": ""} for k in last if k not in keys]
            last = {key: state(r) for key, r in keys.items()}
            if not changed and not gone:
                continue
            if output == "json":
                for r in [*changed, *gone]:
                    echo_raw(json.dumps(r) + "\n")
            else:
                table = _table([*changed, *gone])
                table.show_header = False
                console.print(table)
    except KeyboardInterrupt:
        return

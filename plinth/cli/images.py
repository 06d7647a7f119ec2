"""`plinth images`: what image automation sees: repositories scanned, policies, chosen tags."""
from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from plinth.cli.kubectl import list_plinth_objects
from plinth.cli.output import console, echo_raw


def _ready(obj: dict[str, Any]) -> tuple[str, str]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status")), str(condition.get("message", ""))
    return "Unknown", "not reconciled yet"


def _rule(policy: dict[str, Any]) -> str:
    for kind, settings in policy.items():
        settings = settings or {}
        detail = settings.get("range") or settings.get("order") or "asc"
        return f"{kind} {detail}"
    return ""


def rows(repositories: list[dict[str, Any]], policies: list[dict[str, Any]]
         ) -> list[dict[str, Any]]:
    """One row per policy, joined to its repository's last scan."""
    scans = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in repositories}
    table = []
    for policy in policies:
        meta, spec = policy["metadata"], policy.get("spec") or {}
        ref = spec.get("imageRepositoryRef") or {}
        repo = scans.get((ref.get("namespace") or meta["namespace"], ref.get("name", ""))) or {}
        latest = (policy.get("status") or {}).get("latestRef") or {}
        ready, message = _ready(policy)
        table.append({
            "namespace": meta["namespace"], "policy": meta["name"],
            "image": (repo.get("spec") or {}).get("image", ""),
            "tags": ((repo.get("status") or {}).get("lastScanResult") or {}).get("tagCount"),
            "rule": _rule(spec.get("policy") or {}),
            "latest": latest.get("tag", ""), "digest": latest.get("digest", ""),
            "previous": ((policy.get("status") or {}).get("observedPreviousRef") or {})
            .get("tag", ""),
            "ready": ready, "message": message})
    return table


@click.command("images")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), envvar="KUBECONFIG")
@click.option("--namespace", "-n", help="Only this namespace (default: all).")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def images_command(kubeconfig: str | None, namespace: str | None, output: str) -> None:
    """List image policies: the repository scanned, its tag count, the rule, the chosen tag.

    \b
    Examples:
      plinth images --kubeconfig .plinth/stacks/local/control-plane/admin.kubeconfig
      plinth images -n apps -o json
    """
    data = rows(list_plinth_objects(kubeconfig, namespace, "imagerepositories"),
                list_plinth_objects(kubeconfig, namespace, "imagepolicies"))
    if output == "json":
        echo_raw(json.dumps(data, indent=2) + "\n")
        return
    if not data:
        console.print("no ImagePolicy found")
        return
    header = ("NAMESPACE", "POLICY", "IMAGE", "TAGS", "RULE", "LATEST", "PREVIOUS", "READY")
    lines = [header] + [tuple(str(v) for v in (
        row["namespace"], row["policy"], row["image"], row["tags"] or "-", row["rule"],
        row["latest"] + (f"@{row['digest'][:19]}" if row["digest"] else "") or "-",
        row["previous"] or "-",
        row["ready"] if row["ready"] == "True" else f"{row['ready']}: {row['message']}"))
        for row in data]
    if console.is_terminal:
        table = Table(*header, box=None)
        for line in lines[1:]:
            table.add_row(*(escape(cell) for cell in line))
        console.print(table)
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    echo_raw("".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n"
                     for line in lines))

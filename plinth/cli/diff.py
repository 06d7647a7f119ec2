"""`plinth diff`: what would change between two overlays, revisions or stacks."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from plinth.cli.output import UserError, console, echo_raw
from plinth.cli.render import allow_remote_option
from plinth.diff import ObjectDiff, diff_objects
from plinth.render import RenderError, render


def load_side(spec: str, allow_remote: bool) -> list[dict[str, Any]]:
    """`PATH` (working tree) or `PATH@REV` (that git revision)."""
    path_text, rev = spec, None
    if "@" in spec and not Path(spec).exists():
        path_text, rev = spec.rsplit("@", 1)
    path = Path(path_text)
    if not path.is_dir():
        raise UserError(f"{path_text}: no such overlay directory")
    try:
        return render(path, rev=rev or None, allow_remote=allow_remote).objects
    except RenderError as err:
        raise UserError(str(err)) from err


def _format(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, sort_keys=True)


def print_text(diffs: list[ObjectDiff]) -> None:
    marks = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow"),
             "moved": (">", "cyan")}
    for d in diffs:
        mark, style = marks[d.status]
        moved = f" (from namespace {d.moved_from})" if d.moved_from else ""
        console.print(f"[{style}]{mark} {d.status:<7}[/] {d.key}{moved}")
        for change in d.changes:
            console.print(f"    {change.path}: {_format(change.old)} -> {_format(change.new)}")
    counts = {s: sum(d.status == s for d in diffs) for s in marks}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"{len(diffs)} objects differ: {summary}" if diffs else "no differences")


@click.command(name="diff")
@click.argument("a")
@click.argument("b")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@allow_remote_option
def diff_command(a: str, b: str, output: str, allow_remote: bool) -> None:
    """Compare A and B object by object and field by field.

    A and B are each an overlay path (working tree) or PATH@REV (a git revision). Secret values
    are never printed: a changed Secret key shows as (redacted). Exit 0 when equal, 1 when they
    differ, 2 on error, like diff(1).

    \b
    Examples:
      plinth diff gitops/apps/overlays/dev gitops/apps/overlays/prod
      plinth diff gitops/apps/overlays/prod@HEAD~1 gitops/apps/overlays/prod --output json
    """
    diffs = diff_objects(load_side(a, allow_remote), load_side(b, allow_remote))
    if output == "json":
        echo_raw(json.dumps({"equal": not diffs, "objects": [d.to_json() for d in diffs]},
                            indent=2) + "\n")
    else:
        print_text(diffs)
    if diffs:
        raise SystemExit(1)

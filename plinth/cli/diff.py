"""`plinth diff`: what would change between two overlays, revisions or stacks."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from plinth.cli.output import UserError, console, echo_raw
from plinth.cli.render import allow_remote_option
from plinth.diff import (
    MARKS,
    ObjectDiff,
    change_line,
    diff_objects,
    object_line,
    summary,
)


def load_stack_side(name: str, project: Path) -> list[dict[str, Any]]:
    from plinth.gitops_output import render_repo_spec
    from plinth.render import RenderError
    from plinth.stack_config import StackConfigError, load_stack

    try:
        return render_repo_spec(load_stack(project, name).gitops)
    except (StackConfigError, RenderError) as err:
        raise UserError(str(err)) from err


def load_side(spec: str, allow_remote: bool) -> list[dict[str, Any]]:
    """`PATH` (working tree) or `PATH@REV` (that git revision)."""
    from plinth.render import RenderError, render

    path_text, rev = spec, None
    if "@" in spec and not Path(spec).exists():
        path_text, rev = spec.rsplit("@", 1)
    path = Path(path_text)
    if rev is None and not path.is_dir():  # at a revision, it may be gone from the work tree
        raise UserError(f"{path_text}: no such overlay directory")
    try:
        return render(path, rev=rev or None, allow_remote=allow_remote).objects
    except RenderError as err:
        raise UserError(str(err)) from err


def print_text(diffs: list[ObjectDiff]) -> None:
    styles = {"added": "green", "removed": "red", "changed": "yellow", "moved": "cyan"}
    for d in diffs:
        console.print(f"[{styles[d.status]}]{MARKS[d.status]} {d.status:<7}[/] "
                      + escape(object_line(d)))
        for change in d.changes:
            console.print(escape(change_line(change)))
    console.print(summary(diffs))


@click.command(name="diff")
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--stack", "stacks", multiple=True, metavar="NAME",
              help="A side given as a stack: its scaffolded GitOps output (repeat for both).")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The Pulumi project whose stacks/ --stack reads.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@allow_remote_option
def diff_command(a: str | None, b: str | None, stacks: tuple[str, ...], project: Path,
                 output: str, allow_remote: bool) -> None:
    """Compare A and B object by object and field by field.

    A and B are each an overlay path (working tree), PATH@REV (a git revision), or a stack given
    with --stack NAME: everything the stack's scaffolded GitOps repo makes its cluster run
    (--stack fills the sides in order: `--stack dev --stack prod`, or `--stack prod OVERLAY`).
    Secret values are never printed: a changed Secret key shows as (redacted). Exit 0 when equal,
    1 when they differ, 2 on error, like diff(1).

    \b
    Examples:
      plinth diff gitops/apps/overlays/dev gitops/apps/overlays/prod
      plinth diff gitops/apps/overlays/prod@HEAD~1 gitops/apps/overlays/prod --output json
      plinth diff --stack dev --stack prod
    """
    paths = [s for s in (a, b) if s is not None]
    if len(stacks) + len(paths) != 2:
        raise UserError("diff needs two sides (overlays, PATH@REV or --stack), "
                        f"got {len(stacks) + len(paths)}")
    sides = [load_stack_side(name, project) for name in stacks]
    sides += [load_side(path, allow_remote) for path in paths]
    diffs = diff_objects(sides[0], sides[1])
    if output == "json":
        echo_raw(json.dumps({"equal": not diffs, "objects": [d.to_json() for d in diffs]},
                            indent=2) + "\n")
    else:
        print_text(diffs)
    if diffs:
        raise SystemExit(1)

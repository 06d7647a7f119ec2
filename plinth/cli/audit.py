"""`plinth audit`: one report of a stack for a change under review."""
from __future__ import annotations

from pathlib import Path

import click

from plinth.cli.output import UserError, echo_raw, write_atomically


@click.command("audit")
@click.option("--stack", required=True, metavar="NAME", help="The Pulumi stack to report on.")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The Pulumi project (a git work tree).")
@click.option("--base", default="HEAD", show_default=True, metavar="REV",
              help="The project revision the change is compared with (e.g. origin/main).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json", "html"]),
              default="markdown", show_default=True)
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here instead of stdout.")
def audit_command(stack: str, project: Path, base: str, fmt: str,
                  output_file: Path | None) -> None:
    """Report what a change to stack NAME would do and what its cluster runs now.

    \b
    Four sections:
      Infrastructure plan  `pulumi preview` of the stack: each resource created, updated,
                           replaced or deleted, with the changed properties (no values)
      GitOps change        the objects the stack's GitOps repository renders differently
                           in the working tree than at --base (Secret data redacted)
      Live state           each Kustomization: Ready, revision, objects gone from the
                           cluster or edited since by anyone but the controller
      Who changed what     the stack's Pulumi updates, the project's commits to the stack
                           file
    A section that cannot be read (stack not deployed, cluster away) says why. Exit 0 when
    nothing changes and nothing drifted, 1 when something does, 2 on error (as `diff`).

    \b
    Examples:
      plinth audit --stack dev --base origin/main > audit.md
      plinth audit --stack local --format html -o audit.html
    """
    from plinth.audit import AuditError, audit  # pulumi, git and kubectl only when asked
    from plinth.audit_report import to_html, to_json, to_markdown

    try:
        report = audit(project, stack, base)
    except AuditError as err:
        raise UserError(str(err)) from None
    text = {"markdown": to_markdown, "json": to_json, "html": to_html}[fmt](report)
    if output_file:
        write_atomically(output_file, text)
    else:
        echo_raw(text)
    if report.changed or report.drifted:
        raise SystemExit(1)

"""`plinth render` and `plinth validate`: real kustomize, then strict schema checks."""
from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from plinth.cli.output import UserError, console, echo_raw, write_atomically
from plinth.kustomize_refs import kustomization_file
from plinth.render import RenderError, render
from plinth.schemas import CRDsNotInstalled, Problem, load_crds, validate_objects

allow_remote_option = click.option(
    "--allow-remote", is_flag=True,
    help="Let kustomize fetch remote bases and helm charts (off: sources stay hermetic).",
)
crd_option = click.option(
    "--crd", "crds", multiple=True, type=click.Path(exists=True, path_type=Path),
    help="A CRD file or folder whose kinds the rendered objects may use (repeat).",
)


def render_checked(path: Path, rev: str | None, allow_remote: bool,
                   crds: tuple[Path, ...]) -> tuple[str, list[Problem]]:
    """kustomize output plus every schema problem (found on a render with origin annotations)."""
    try:
        traced = render(path, rev=rev, allow_remote=allow_remote, with_origin=True)
        plain = render(path, rev=rev, allow_remote=allow_remote)
        known = load_crds(crds)
    except (RenderError, CRDsNotInstalled) as err:
        raise UserError(str(err)) from err
    return plain.text, validate_objects(traced.objects, traced.path, known)


@click.command(name="render")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rev", help="Render PATH as of this git revision instead of the working tree.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the YAML stream here (only if it renders and validates).")
@allow_remote_option
@crd_option
def render_command(path: Path, rev: str | None, output_file: Path | None, allow_remote: bool,
                   crds: tuple[Path, ...]) -> None:
    """Build the kustomization at PATH with the real kustomize and validate every object.

    Prints the YAML stream, exactly as `kubectl kustomize` does. Objects are validated against
    the Kubernetes 1.33 OpenAPI schemas and the Plinth CRDs (unknown fields are errors); any
    problem names the file and object, and nothing is printed or written.

    \b
    Examples:
      plinth render gitops/apps/overlays/prod
      plinth render gitops/apps/overlays/prod --rev HEAD~1 -o /tmp/prod.yaml
    """
    if rev is None and not path.is_dir():  # at a revision, it may be gone from the work tree
        raise UserError(f"{path}: no such overlay directory")
    text, problems = render_checked(path, rev, allow_remote, crds)
    if problems:
        raise UserError("invalid objects:\n  " + "\n  ".join(str(p) for p in problems))
    if output_file:
        write_atomically(output_file, text)
    else:
        echo_raw(text)


def find_overlays(repo: Path) -> list[Path]:
    """Every entry point of a GitOps repo: clusters/<cluster>/ and <area>/overlays/<env>/."""
    candidates = [*repo.glob("clusters/*"), *repo.glob("*/overlays/*")]
    return sorted(p for p in candidates if p.is_dir() and kustomization_file(p))


@click.command()
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@allow_remote_option
@crd_option
def validate(repo: Path, allow_remote: bool, crds: tuple[Path, ...]) -> None:
    """Render and validate every overlay of the GitOps repository REPO (for PR pipelines).

    Exit 0 when all are valid, 1 when any is not, 2 when REPO has no overlay.

    \b
    Example:
      plinth validate ./gitops
    """
    overlays = find_overlays(repo)
    if not overlays:
        raise UserError(f"{repo}: no clusters/<name>/ or <area>/overlays/<env>/ kustomization")
    failed = 0
    for overlay in overlays:
        name = overlay.relative_to(repo).as_posix()
        try:
            _, problems = render_checked(overlay, None, allow_remote, crds)
        except UserError as err:
            problems = [Problem(name, "(render)", err.format_message())]
        if problems:
            failed += 1
            console.print(f"[red]FAIL[/] {escape(name)}")
            for problem in problems:
                console.print(escape(f"     {problem}"))
        else:
            console.print(f"[green] ok [/] {escape(name)}")
    console.print(f"{len(overlays) - failed} of {len(overlays)} overlays valid")
    if failed:
        raise SystemExit(1)

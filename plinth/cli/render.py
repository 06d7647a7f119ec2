"""`plinth render` and `plinth validate`: real kustomize, then strict schema checks."""
from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from plinth.cli import output
from plinth.cli.output import UserError, echo_raw, write_atomically

if TYPE_CHECKING:  # kustomize, the schemas and git load when a command runs, not for --help
    from plinth.schemas import Problem

allow_remote_option = click.option(
    "--allow-remote", is_flag=True,
    help="Let kustomize fetch remote bases and helm charts (off: sources stay hermetic).",
)
crd_option = click.option(
    "--crd", "crds", multiple=True, type=click.Path(exists=True, path_type=Path),
    help="A CRD file or folder whose kinds the rendered objects may use (repeat); CRDs written "
         "in the repository are found without it.",
)
skip_unknown_option = click.option(
    "--skip-unknown", is_flag=True,
    help="Validate the kinds with a known schema; list the objects of other kinds as skipped.")


@dataclass(frozen=True)
class Checked:
    text: str  # exactly what `kubectl kustomize` prints
    problems: list[Problem]
    skipped: list[Problem]  # objects of unknown kinds, with --skip-unknown
    warnings: tuple[str, ...]


def render_checked(path: Path, rev: str | None, allow_remote: bool, crds: tuple[Path, ...],
                   skip_unknown: bool, repo_root: Path | None = None) -> Checked:
    """kustomize output plus every schema problem; kustomize runs once, and once more with
    origin annotations only when there are problems to locate.

    A kind no schema covers is looked up among the CRDs written in the repository (its work
    tree) before it counts as unknown. `repo_root` defaults to the git work tree around PATH."""
    from plinth.render import RenderError, render, repository_root

    # The schema library and the shared definitions load in a thread while kustomize runs, on
    # the other core: a render then costs little more than kustomize itself.
    preload = threading.Thread(
        target=lambda: importlib.import_module("plinth.schemas").warm(), daemon=True)
    preload.start()
    root = repo_root or repository_root(path)
    try:
        plain = render(path, repo_root=root, rev=rev, allow_remote=allow_remote)
    except RenderError as err:
        raise UserError(str(err)) from err
    preload.join()
    from plinth.schemas import SchemasNotInstalled, load_crds, repository_crds, validate_objects

    try:
        known = load_crds(crds)
        problems = validate_objects(plain.objects, plain.path, known)
        unknown = {p.unknown for p in problems if p.unknown}
        if unknown:
            known = [*known, *repository_crds(root, unknown)]
            problems = validate_objects(plain.objects, plain.path, known)
    except SchemasNotInstalled as err:
        raise UserError(str(err)) from err
    if problems:  # kustomize again, with origins, only to name each problem's file
        try:
            traced = render(path, repo_root=root, rev=rev, allow_remote=allow_remote,
                            with_origin=True)
        except RenderError as err:
            raise UserError(str(err)) from err
        problems = validate_objects(traced.objects, traced.path, known)
    skipped = [p for p in problems if p.unknown] if skip_unknown else []
    return Checked(plain.text, [p for p in problems if p not in skipped], skipped,
                   plain.warnings)


def _note(markup: str, text: str) -> None:
    """`text` to stderr after rich `markup`; rich loads only when there is something to say."""
    from rich.markup import escape

    output.err_console.print(f"{markup}{escape(text)}")


def _warn(warnings: tuple[str, ...], where: str) -> None:
    for warning in warnings:
        _note("[yellow]warning:[/] ", f"{where}: kustomize: {warning}")


@click.command(name="render")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rev", help="Render PATH as of this git revision instead of the working tree.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the YAML stream here (only if it renders and validates).")
@allow_remote_option
@crd_option
@skip_unknown_option
def render_command(path: Path, rev: str | None, output_file: Path | None, allow_remote: bool,
                   crds: tuple[Path, ...], skip_unknown: bool) -> None:
    """Build the kustomization at PATH with the real kustomize and validate every object.

    Prints the YAML stream, exactly as `kubectl kustomize` does. A folder without a
    kustomization renders its manifests as Flux does (a kustomization of every manifest
    under it). Objects are validated against the Kubernetes 1.33 OpenAPI schemas, the Plinth
    CRDs and the CRDs in the repository (unknown fields are errors); any problem names the
    file and object, and nothing is printed or written. kustomize's warnings go to stderr.

    \b
    Examples:
      plinth render gitops/apps/overlays/prod
      plinth render gitops/apps/overlays/prod --rev HEAD~1 -o /tmp/prod.yaml
    """
    if rev is None and not path.is_dir():  # at a revision, it may be gone from the work tree
        raise UserError(f"{path}: no such overlay directory")
    checked = render_checked(path, rev, allow_remote, crds, skip_unknown)
    _warn(checked.warnings, str(path))
    if checked.problems:
        raise UserError("invalid objects:\n  " + "\n  ".join(str(p) for p in checked.problems))
    for problem in checked.skipped:
        _note("", f"skipped: {problem.where}: {problem.obj}: no schema")
    if output_file:
        write_atomically(output_file, checked.text)
    else:
        echo_raw(checked.text)


def _folders(repo: Path) -> list[Path]:
    """Every folder of `repo` that may hold manifests: hidden folders (.git) and Helm charts
    (templates are no YAML until helm renders them) are not entered."""
    found = []
    for top, dirs, files in os.walk(repo):
        if "Chart.yaml" in files:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.append(Path(top))
    return sorted(found)


def _is_component(directory: Path) -> bool:
    from plinth.kustomize_refs import kustomization_file
    from plinth.manifest_yaml import Loader

    kfile = kustomization_file(directory)
    try:
        doc = yaml.load(kfile.read_text(), Loader=Loader) if kfile else None
    except (OSError, yaml.YAMLError):
        return False  # rendering it says what is wrong
    return isinstance(doc, dict) and doc.get("kind") == "Component"


def _manifests(directory: Path) -> list[Path]:
    """The YAML files directly in `directory` that are Kubernetes manifests."""
    from plinth.kustomize_refs import KUSTOMIZATION_FILES

    found = []
    for path in sorted(directory.glob("*.y*ml")):
        if path.name in KUSTOMIZATION_FILES or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            found.append(path)  # rendering it says what is wrong
            continue
        if "apiVersion:" in text and "kind:" in text:
            found.append(path)
    return found


def find_roots(repo: Path) -> list[Path]:
    """Every entry point to validate under `repo`: each folder with a kustomization (not a
    Component, which only renders inside another), and each topmost folder of plain
    manifests that no kustomization reads (Flux's layout: a cluster folder of plain
    manifests, rendered as Flux would). Hidden folders and Helm charts are left out. The
    root of a repository holds the files of tools (skaffold.yaml), not objects; a folder
    inside a git work tree named as `repo` is one of manifests like the rest."""
    from plinth.kustomize_refs import SourceError, check_tree, kustomization_file
    from plinth.tree_archive import TreeError, WorkTree

    repo = repo.resolve()
    dirs = _folders(repo)
    kustomized = [d for d in dirs if kustomization_file(d)]
    reached: set[Path] = set()
    tree = WorkTree(repo)
    for directory in kustomized:
        try:
            walk = check_tree(tree, directory.relative_to(repo).as_posix() or ".")
        except (SourceError, TreeError):
            continue  # validating it reports why
        reached.update(repo / f for f in walk.files)
    roots = [d for d in kustomized if not _is_component(d)]
    plain: list[Path] = []
    candidates = [d for d in dirs if d != repo] if _is_repository_root(repo) else dirs
    for directory in candidates:
        if kustomization_file(directory) or any(
                p in directory.parents for p in [*plain, *kustomized]):
            continue
        if any(m not in reached for m in _manifests(directory)):
            plain.append(directory)
    return sorted([*roots, *plain])


def root_manifests_left_out(repo: Path) -> list[Path]:
    """The manifests directly in `repo` that no entry point covers: those at the root of a
    repository without a kustomization there (see find_roots), said rather than passed over."""
    from plinth.kustomize_refs import kustomization_file

    repo = repo.resolve()
    if kustomization_file(repo) or not _is_repository_root(repo):
        return []
    return _manifests(repo)


def _is_repository_root(folder: Path) -> bool:
    """Whether `folder` (resolved) is a repository's root, which holds the files of tools
    (skaffold.yaml), not objects: no folder of plain manifests to validate. A folder outside
    any git work tree counts as one."""
    from plinth.render import repository_root

    return repository_root(folder) == folder


@click.command()
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@allow_remote_option
@crd_option
@skip_unknown_option
def validate(repo: Path, allow_remote: bool, crds: tuple[Path, ...], skip_unknown: bool) -> None:
    """Render and validate every kustomization of the repository REPO (for PR pipelines).

    Finds each folder with a kustomization (Components aside) and each folder of plain
    manifests no kustomization reads, whatever the layout (Plinth's, Flux's, Argo CD's).
    REPO may also be a folder inside a repository; its own manifests count then too.
    Exit 0 when all are valid, 1 when any is not, 2 when REPO has nothing to validate.

    \b
    Examples:
      plinth validate ./gitops
      plinth validate . --skip-unknown --crd ./vendor/crds
    """
    from rich.markup import escape

    from plinth.schemas import Problem

    roots = find_roots(repo)
    left_out = root_manifests_left_out(repo)
    note = (f"not validated: {len(left_out)} manifest{'s' * (len(left_out) != 1)} at the root "
            f"of the repository, which is no entry point ({', '.join(m.name for m in left_out[:5])}"
            f"{', ...' if len(left_out) > 5 else ''}); `plinth render {repo}` renders it all"
            ) if left_out else ""
    if not roots:
        raise UserError(f"{repo}: no kustomization and no folder of Kubernetes manifests"
                        + (f"; {note}" if note else ""))
    failed, skipped = 0, 0
    base = repo.resolve()
    for root in roots:
        name = root.relative_to(base).as_posix()
        try:
            checked = render_checked(root, None, allow_remote, crds, skip_unknown, base)
            problems, warnings = checked.problems, checked.warnings
            skipped += len(checked.skipped)
        except UserError as err:
            # the message starts with the folder, which the FAIL line above it names already
            message = err.format_message().removeprefix(f"{name}: ")
            problems, warnings = [Problem(name, "(render)", message)], ()
            checked = None
        if problems:
            failed += 1
            output.console.print(f"[red]FAIL[/] {escape(name)}")
            for problem in problems:
                output.console.print(escape(f"     {problem}"))
        else:
            output.console.print(f"[green] ok [/] {escape(name)}")
        for warning in warnings:
            output.console.print(f"     [yellow]warning:[/] {escape(f'kustomize: {warning}')}")
        for problem in checked.skipped if checked else []:
            output.console.print(escape(f"     skipped: {problem.where}: {problem.obj}: no schema"))
    summary = f"{len(roots) - failed} of {len(roots)} valid"
    output.console.print(summary + (f"; {skipped} objects of unknown kinds skipped"
                                    if skipped else ""))
    if note:
        output.console.print(f"[yellow]note:[/] {escape(note)}")
    if failed:
        raise SystemExit(1)

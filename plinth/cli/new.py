"""`plinth new`: scaffold a GitOps repository and commit it."""
from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import click
from rich.markup import escape

from plinth.cli.output import UserError, console

if TYPE_CHECKING:  # pydantic, the template and git load when the command runs
    from pydantic import ValidationError

    from plinth.repospec import RepoSpec
    from plinth.scaffold import Plan


def build_spec(cluster: str, envs: tuple[str, ...], apps: tuple[str, ...], port: int,
               registry: str | None, controller_version: str, cluster_env: str | None,
               image_range: str | None, pull_request_provider: str | None
               ) -> RepoSpec:
    from pydantic import ValidationError

    from plinth.repospec import AppSpec, EnvironmentSpec, ImageAutomationSpec, RepoSpec

    if pull_request_provider is not None and image_range is None:
        raise UserError("--pull-request-provider is for image automation: add --image-automation")
    try:
        return RepoSpec(
            cluster=cluster,
            cluster_env=cluster_env,
            environments=[EnvironmentSpec.named(e) for e in envs or ("dev",)],
            apps=[AppSpec.parse(a, port=port) for a in apps],
            registry=registry,
            controller_version=controller_version,
            image_automation=None if image_range is None else ImageAutomationSpec(
                range=image_range, pull_request_provider=pull_request_provider),
        )
    except (ValidationError, ValueError) as err:
        raise UserError(_validation_message(err)) from err


def _validation_message(err: ValidationError | ValueError) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}={e.get('input')!r}: {e['msg']}"
            for e in err.errors()
        )
    return str(err)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cluster", required=True, help="Cluster name: clusters/<cluster>/ is its entry point.")
@click.option("--env", "envs", multiple=True, help="An environment (repeat); default: dev.")
@click.option("--cluster-env", help="The environment this cluster runs (default: the first --env).")
@click.option("--app", "apps", multiple=True, metavar="NAME=IMAGE[:TAG]", help="An app (repeat).")
@click.option("--port", default=8080, show_default=True, help="Container port of the apps.")
@click.option("--registry", help="Registry URL prefixed to app images that name no registry.")
@click.option("--controller-version", default="0.1.0", show_default=True)
@click.option("--image-automation", "image_range", metavar="RANGE",
              help="Follow the newest tag of each app's image in this semver range "
                   "(\">=1.0.0\") in the cluster's environment (clusters/<cluster>/images.yaml).")
@click.option("--pull-request-provider", metavar="NAME",
              help="With --image-automation: propose new tags by pull request on this "
                   "Provider's forge instead of committing to the branch.")
@click.option("--force", is_flag=True, help="Overwrite files edited since they were generated.")
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
def new(directory: Path, cluster: str, envs: tuple[str, ...], cluster_env: str | None,
        apps: tuple[str, ...], port: int, registry: str | None, controller_version: str,
        image_range: str | None, pull_request_provider: str | None, force: bool,
        dry_run: bool) -> None:
    """Scaffold a GitOps repository in DIRECTORY and commit it (git init if needed).

    Re-running on a scaffolded repository updates the generated files it changed, refuses to
    overwrite files edited since (unless --force), and commits only when something changed.

    \b
    Examples:
      plinth new ./gitops --cluster local --env dev --env prod --app web=ghcr.io/acme/web:1.2.3
      plinth new ./gitops --cluster local --env dev --app web=acme/web:1.3.0 --dry-run
    """
    from plinth.schemas import SchemasNotInstalled
    from plinth.scaffold import ScaffoldError, plan, render_template, write

    spec = build_spec(cluster, envs, apps, port, registry, controller_version, cluster_env,
                      image_range, pull_request_provider)
    try:
        files = render_template(spec)
        result = plan(directory, files)
        _report(result)
        if dry_run:
            return
        if result.conflicts and not force:
            raise UserError(
                "these files were edited since they were generated; re-run with --force to "
                f"overwrite them: {', '.join(result.conflicts)}"
            )
        write(directory, files, force=force)
    except (ScaffoldError, SchemasNotInstalled) as err:
        raise UserError(str(err)) from err
    sha = _commit(directory, result)
    if sha:
        console.print(escape(f"committed {sha[:12]} in {directory}"))
    else:
        console.print(escape(f"{directory}: up to date, nothing to commit"))


def _report(result: Plan) -> None:
    for label, style, paths in (("create", "green", result.create), ("update", "yellow",
                                result.update), ("delete", "red", result.delete),
                                ("edited", "bold red", result.conflicts)):
        for path in paths:
            console.print(f"[{style}]{label:>7}[/] {escape(path)}")
    console.print(f"{len(result.unchanged)} unchanged")


def _commit(directory: Path, result: Plan) -> str | None:
    import git

    from plinth.scaffold import MANIFEST

    try:
        repo = git.Repo(directory)
    except git.InvalidGitRepositoryError:
        repo = git.Repo.init(directory, initial_branch="main")
    changed = [*result.create, *result.update, *result.conflicts]
    present = [p for p in changed if (directory / p).exists()]
    gone = [p for p in [*result.delete, *result.conflicts] if not (directory / p).exists()]
    if not present and not gone:
        return None
    repo.index.add([*present, MANIFEST])
    if gone:
        repo.index.remove(gone)
    first = not repo.head.is_valid()
    message = "plinth new: scaffold GitOps repository" if first else \
        "plinth new: update generated files"
    return str(repo.index.commit(message).hexsha)

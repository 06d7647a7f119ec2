"""`plinth promote`: propose one environment's image tags for the next, by pull request."""
from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import click
from rich.markup import escape

from plinth.cli.forge_options import ForgeTarget, forge_options, forge_target
from plinth.cli.output import UserError, console

if TYPE_CHECKING:  # git, kustomize and the forge client load when the command runs
    from plinth.promote import Promotion, Remote, Request


def _remote(repo_dir: Path, forge: ForgeTarget | None) -> Remote:
    from plinth.promote import forge_remote, local_remote

    if forge is None:
        return local_remote(repo_dir)
    return forge_remote(forge.client, forge.repo, forge.token)


def _report(result: Promotion, request: Request, dry_run: bool) -> None:
    from plinth.diff import text_lines

    moves = result.staged.moves
    if not moves:
        console.print(escape(f"nothing to promote: {request.target} already runs "
                             f"{request.source}'s image tags"))
        return
    for move in moves:
        console.print(escape(f"{move.app}: {move.image} {move.old} -> {move.new}"))
    for line in text_lines(result.staged.diffs):
        console.print(escape(line))
    if dry_run:
        console.print(escape(f"dry run: branch {result.branch} left as it is"))
        return
    console.print(escape(f"branch {result.branch} at {result.commit[:12]}"))
    if result.pull is not None:
        console.print(escape(f"pull request #{result.pull.number}: {result.pull.html_url}"))


@click.command("promote")
@click.option("--from", "source", required=True, metavar="ENV",
              help="The environment whose image tags move (apps/overlays/ENV).")
@click.option("--to", "target", required=True, metavar="ENV",
              help="The environment that gets them.")
@click.option("--app", "apps", multiple=True, metavar="NAME",
              help="Only this app (repeat); default: every app whose tags differ.")
@click.option("--repo", "repo_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Without a forge: the local GitOps repository the branch is pushed into.")
@forge_options
@click.option("--dry-run", is_flag=True, help="Only show what would move and the diff.")
def promote_command(source: str, target: str, apps: tuple[str, ...], repo_dir: Path,
                    stack: str | None, project: Path, forge_url: str | None, forge_kind: str,
                    repository: str | None, token_env: str, dry_run: bool) -> None:
    """Move image tags from one environment's overlay to the next, by pull request.

    Both overlays are read from the base branch (the forge repository's default branch, or
    the checked-out branch of --repo). One commit on branch plinth/promote-FROM-to-TO sets
    the target's tags; the pull request's body is the rendered diff of the target overlay
    (secrets redacted). Re-running updates the same branch and pull request. Exit 0 when
    done or when there is nothing to promote, 2 on error.

    \b
    Examples:
      plinth promote --from dev --to prod --forge-url http://127.0.0.1:3000 \\
          --repository acme/gitops --token-env FORGE_TOKEN
      plinth promote --from dev --to prod --app web --repo ./gitops --dry-run
      plinth promote --from dev --to prod --stack local
    """
    import git

    from plinth.forge import ForgeError
    from plinth.git_push import PushError
    from plinth.promote import PromoteError, Request, promote
    from plinth.render import RenderError

    request = Request(source, target, apps)
    forge = forge_target(forge_url, forge_kind, repository, token_env, stack, project)
    try:
        result = promote(_remote(repo_dir, forge), request, dry_run=dry_run)
    except (PromoteError, ForgeError, PushError, RenderError, git.GitCommandError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(forge.scrub(message) if forge else message) from None
    _report(result, request, dry_run)

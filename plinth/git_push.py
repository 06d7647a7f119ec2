"""Make a change in a fresh clone, commit it and push it, without ever force-pushing.

The one way Plinth writes to git: the GitOpsRepo component (scaffolded files) and image
automation (new tags) both call `push_change`. When the branch moved meanwhile, the change is
made again on top of the new tip and pushed again, a bounded number of times: that is a rebase
for changes that are a pure function of their inputs.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git

from plinth.git_auth import Credentials, git_env

ATTEMPTS = 3
PLINTH_AUTHOR = git.Actor("Plinth", "plinth@users.noreply.plinth.dev")


class PushError(Exception):
    """Nothing was pushed; the message is free of credentials."""


@dataclass(frozen=True)
class Pushed:
    commit: str  # the branch tip after the push ("" for an empty repository left alone)
    changed: list[str]  # files of the new commit; empty when there was nothing to change
    target_exists: bool  # the branch pushed to (push_branch, else branch) is on the remote


def push_change(url: str, credentials: Credentials, branch: str,
                change: Callable[[Path], str | None], *, push_branch: str | None = None,
                author: git.Actor = PLINTH_AUTHOR) -> Pushed:
    """`change(work_tree)` edits files and returns the commit message, or None for no change.

    With `push_branch`, the change is based on that branch when it exists (so automation
    commits accumulate there, as in a pull-request flow) and on `branch` otherwise."""
    target = push_branch or branch
    with tempfile.TemporaryDirectory(prefix="plinth-push-") as tmp, \
            git_env(credentials) as env:
        work = Path(tmp) / "repo"
        try:
            repo = git.Repo.init(work, initial_branch=target)
            repo.create_remote("origin", url)
            for _ in range(ATTEMPTS):
                exists = _exists(repo, target, env)
                _checkout(repo, target if exists else branch, target, env)
                message = change(work)
                repo.git.add(A=True)
                changed = sorted(repo.git.diff("--cached", "--name-only").split()) \
                    if message else []
                if not changed:
                    return Pushed(repo.head.commit.hexsha if repo.head.is_valid() else "", [],
                                  exists)
                repo.index.commit(message or "", author=author, committer=author)
                if _push(repo, target, env):
                    return Pushed(repo.head.commit.hexsha, changed, True)
        except git.GitCommandError as err:
            verb = err.command[1] if len(err.command) > 1 else "git"
            raise PushError(credentials.scrub(
                f"git {verb} failed for {url}: {str(err.stderr).strip()}")) from None
    raise PushError(f"{credentials.scrub(url)}: branch {target} kept moving; gave up after "
                    f"{ATTEMPTS} attempts without force-pushing")


def _exists(repo: git.Repo, branch: str, env: dict[str, str]) -> bool:
    return bool(str(repo.git.ls_remote("--heads", "origin", branch, env=env)).strip())


def _checkout(repo: git.Repo, source: str, target: str, env: dict[str, str]) -> None:
    """Reset the work tree to the remote `source` tip, on local branch `target`."""
    if not _exists(repo, source, env):
        return  # an empty repository: the first commit starts the branch
    repo.git.fetch("origin", source, env=env)
    repo.git.checkout("-f", "-B", target, f"origin/{source}")
    repo.git.clean("-fdx")


def _push(repo: git.Repo, branch: str, env: dict[str, str]) -> bool:
    """False when the remote branch moved (non-fast-forward); other failures raise."""
    try:
        repo.git.push("origin", f"HEAD:refs/heads/{branch}", env=env)
        return True
    except git.GitCommandError as err:
        if "rejected" in str(err.stderr) or "non-fast-forward" in str(err.stderr):
            return False
        raise

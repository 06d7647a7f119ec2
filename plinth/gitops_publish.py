"""Publish the scaffolded GitOps repo to its remote: clone, scaffold, commit, push.

Used by the GitOpsRepo component. It never force-pushes. When the branch moved while we
worked, the generated files are written again on top of the new tip (they are a pure function
of the spec, so this is a rebase) and pushed again. Files a person edited stop it with an error
naming them, because the scaffolder never overwrites them.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from plinth.git_auth import Credentials, git_env
from plinth.repospec import RepoSpec
from plinth.scaffold import Plan, ScaffoldConflict, render_template, write

AUTHOR = git.Actor("Plinth", "plinth@users.noreply.plinth.dev")
ATTEMPTS = 3


class PublishError(Exception):
    """Nothing was pushed; the message is free of credentials."""


@dataclass(frozen=True)
class Published:
    commit: str
    changed: list[str]  # empty: the remote already held exactly these files


def publish(spec: RepoSpec, url: str, branch: str, credentials: Credentials,
            reason: str) -> Published:
    with tempfile.TemporaryDirectory(prefix="plinth-publish-") as tmp, \
            git_env(credentials) as env:
        work = Path(tmp) / "repo"
        try:
            repo = _checkout(url, branch, work, env)
            for _ in range(ATTEMPTS):
                plan = write(work, render_template(spec))
                changed = sorted(plan.create + plan.update + plan.delete)
                if not changed:
                    return Published(_head(repo), [])
                repo.git.add(A=True)
                repo.index.commit(_message(spec, reason, plan), author=AUTHOR, committer=AUTHOR)
                if _push(repo, branch, env):
                    return Published(repo.head.commit.hexsha, changed)
                _reset_to_remote(repo, branch, env)
        except ScaffoldConflict as conflict:
            raise PublishError(
                f"{credentials.scrub(url)}: these generated files were changed in the "
                f"repository and are not overwritten: {', '.join(conflict.paths)}; revert them "
                f"there or change the stack config instead") from None
        except git.GitCommandError as err:
            raise PublishError(credentials.scrub(
                f"git {err.command[1] if len(err.command) > 1 else ''} failed for "
                f"{url}: {str(err.stderr).strip()}")) from None
    raise PublishError(f"{credentials.scrub(url)}: branch {branch} kept moving; gave up after "
                       f"{ATTEMPTS} attempts without force-pushing")


def _checkout(url: str, branch: str, work: Path, env: dict[str, str]) -> git.Repo:
    repo = git.Repo.init(work, initial_branch=branch)
    repo.create_remote("origin", url)
    if str(repo.git.ls_remote("--heads", "origin", branch, env=env)).strip():
        repo.git.fetch("origin", branch, env=env)
        repo.git.checkout("-B", branch, f"origin/{branch}")
    return repo


def _head(repo: git.Repo) -> str:
    return repo.head.commit.hexsha if repo.head.is_valid() else ""


def _push(repo: git.Repo, branch: str, env: dict[str, str]) -> bool:
    """False when the remote branch moved (non-fast-forward); other failures raise."""
    try:
        repo.git.push("origin", f"HEAD:refs/heads/{branch}", env=env)
        return True
    except git.GitCommandError as err:
        if "rejected" in str(err.stderr) or "non-fast-forward" in str(err.stderr):
            return False
        raise


def _reset_to_remote(repo: git.Repo, branch: str, env: dict[str, str]) -> None:
    repo.git.fetch("origin", branch, env=env)
    repo.git.reset("--hard", f"origin/{branch}")


def _message(spec: RepoSpec, reason: str, plan: Plan) -> str:
    lines = [f"plinth: {reason} (cluster {spec.cluster})", ""]
    lines += [f"created {p}" for p in plan.create]
    lines += [f"updated {p}" for p in plan.update]
    lines += [f"deleted {p}" for p in plan.delete]
    return "\n".join(lines) + "\n"

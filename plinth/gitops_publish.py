"""Publish the scaffolded GitOps repo to its remote (used by the GitOpsRepo component).

The generated files are a pure function of the spec, so `git_push.push_change` can make them
again on top of a branch that moved. Files a person edited stop it with an error naming them:
the scaffolder never overwrites them.
"""
from __future__ import annotations

from pathlib import Path

from plinth.git_auth import Credentials
from plinth.git_push import PushError, Pushed, push_change
from plinth.repospec import RepoSpec
from plinth.scaffold import Plan, ScaffoldConflict, render_template, write

__all__ = ["PublishError", "Pushed", "publish"]


class PublishError(PushError):
    """Nothing was pushed; the message is free of credentials."""


def publish(spec: RepoSpec, url: str, branch: str, credentials: Credentials,
            reason: str) -> Pushed:
    def scaffold(work: Path) -> str | None:
        plan = write(work, render_template(spec))
        return _message(spec, reason, plan) if plan.changes else None

    try:
        return push_change(url, credentials, branch, scaffold)
    except ScaffoldConflict as conflict:
        raise PublishError(
            f"{credentials.scrub(url)}: these generated files were changed in the repository "
            f"and are not overwritten: {', '.join(conflict.paths)}; revert them there or "
            f"change the stack config instead") from None
    except PushError as err:
        raise PublishError(str(err)) from None


def _message(spec: RepoSpec, reason: str, plan: Plan) -> str:
    lines = [f"plinth: {reason} (cluster {spec.cluster})", ""]
    lines += [f"created {p}" for p in plan.create]
    lines += [f"updated {p}" for p in plan.update]
    lines += [f"deleted {p}" for p in plan.delete]
    return "\n".join(lines) + "\n"

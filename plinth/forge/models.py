"""What a forge answers, as typed values: one shape for Gitea and GitHub.

Each `from_api` reads both forges' JSON; where they differ (a status item's `status` on Gitea,
`state` on GitHub; `commit.id` vs `commit.sha`) the difference ends here.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from plinth.forge.transport import JSON

MergeMethod = Literal["merge", "squash", "rebase"]


class StatusState(StrEnum):
    """A commit status. GitHub knows the first four; Gitea also stores `warning` and `skipped`.

    Gitea does not validate what it stores, so anything else read back is taken as `error`."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    WARNING = "warning"
    SKIPPED = "skipped"

    @classmethod
    def parse(cls, value: object) -> StatusState:
        try:
            return cls(str(value))
        except ValueError:
            return cls.ERROR


@dataclass(frozen=True)
class RepoRef:
    """`owner/name`: the owner is a user or an organisation."""

    owner: str
    name: str

    @classmethod
    def parse(cls, full_name: str) -> RepoRef:
        owner, sep, name = full_name.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError(f"not owner/name: {full_name!r}")
        return cls(owner, name)

    @property
    def path(self) -> str:
        """The API path of the repository, `/repos/<owner>/<name>`."""
        return f"/repos/{self.owner}/{self.name}"

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Organization:
    id: int
    name: str

    @classmethod
    def from_api(cls, data: JSON) -> Organization:
        return cls(id=int(data["id"]), name=str(data.get("username") or data["login"]))


@dataclass(frozen=True)
class Repository:
    ref: RepoRef
    id: int
    clone_url: str  # over HTTP(S); credentials go with the git call, never into this URL
    html_url: str
    default_branch: str
    private: bool
    empty: bool  # Gitea only; GitHub answers False

    @classmethod
    def from_api(cls, data: JSON) -> Repository:
        return cls(ref=RepoRef.parse(str(data["full_name"])), id=int(data["id"]),
                   clone_url=str(data["clone_url"]), html_url=str(data["html_url"]),
                   default_branch=str(data.get("default_branch") or "main"),
                   private=bool(data["private"]), empty=bool(data.get("empty", False)))


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool

    @classmethod
    def from_api(cls, data: JSON) -> Branch:
        commit = data["commit"]
        return cls(name=str(data["name"]), sha=str(commit.get("id") or commit["sha"]),
                   protected=bool(data.get("protected", False)))


@dataclass(frozen=True)
class CommitStatus:
    state: StatusState
    context: str
    description: str
    target_url: str

    @classmethod
    def from_api(cls, data: JSON) -> CommitStatus:
        return cls(state=StatusState.parse(data.get("state") or data.get("status")),
                   context=str(data.get("context") or ""),
                   description=str(data.get("description") or ""),
                   target_url=str(data.get("target_url") or ""))


@dataclass(frozen=True)
class CombinedStatus:
    """The newest status of each context on a commit, and their combination.

    A commit without statuses is `pending` on both forges (Gitea answers an empty state)."""

    sha: str
    state: StatusState
    statuses: tuple[CommitStatus, ...]

    @classmethod
    def from_api(cls, data: JSON) -> CombinedStatus:
        return cls(sha=str(data.get("sha") or ""),
                   state=StatusState.parse(data.get("state") or StatusState.PENDING),
                   statuses=tuple(CommitStatus.from_api(s) for s in data.get("statuses") or []))

    def of(self, context: str) -> CommitStatus | None:
        """The status of one context, or None when the commit has none for it."""
        return next((s for s in self.statuses if s.context == context), None)


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    head: str  # branch names, in the same repository
    base: str
    head_sha: str
    state: Literal["open", "closed"]
    merged: bool
    merge_commit_sha: str | None
    html_url: str

    @classmethod
    def from_api(cls, data: JSON) -> PullRequest:
        merged = bool(data.get("merged") or data.get("merged_at"))
        return cls(number=int(data["number"]), title=str(data.get("title") or ""),
                   body=str(data.get("body") or ""), head=str(data["head"]["ref"]),
                   base=str(data["base"]["ref"]), head_sha=str(data["head"]["sha"]),
                   state="open" if data.get("state") == "open" else "closed", merged=merged,
                   merge_commit_sha=(str(data["merge_commit_sha"])
                                     if merged and data.get("merge_commit_sha") else None),
                   html_url=str(data.get("html_url") or ""))


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str

    @classmethod
    def from_api(cls, data: JSON) -> Comment:
        return cls(id=int(data["id"]), body=str(data.get("body") or ""),
                   author=str((data.get("user") or {}).get("login") or ""))


@dataclass(frozen=True)
class Webhook:
    """A repository webhook; its secret is write-only on both forges, so it is not here."""

    id: int
    url: str
    events: tuple[str, ...]
    active: bool

    @classmethod
    def from_api(cls, data: JSON) -> Webhook:
        return cls(id=int(data["id"]), url=str((data.get("config") or {}).get("url") or ""),
                   events=tuple(sorted(str(e) for e in data.get("events") or [])),
                   active=bool(data.get("active", True)))


@dataclass(frozen=True)
class BranchProtection:
    """Required status contexts of a branch (merges wait for all of them to be `success`)."""

    branch: str
    required_contexts: tuple[str, ...]

    @classmethod
    def from_gitea(cls, data: JSON) -> BranchProtection:
        contexts = data.get("status_check_contexts") or [] if data.get("enable_status_check") \
            else []
        return cls(branch=str(data.get("rule_name") or data["branch_name"]),
                   required_contexts=tuple(str(c) for c in contexts))

    @classmethod
    def from_github(cls, branch: str, data: JSON) -> BranchProtection:
        checks = data.get("required_status_checks") or {}
        return cls(branch=branch,
                   required_contexts=tuple(str(c) for c in checks.get("contexts") or []))

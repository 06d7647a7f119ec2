"""Fetch a git repository at a ref and keep a checked-out artifact per revision.

Shallow where git allows it, one cache per GitRepository object, one artifact folder per
revision. One fetch at a time per cache: git and the artifact steps take the cache's file lock,
whoever asks (a thread of this controller, or another process on the same cache). Credentials
reach git only through the environment (never argv, never a URL), and every error message is
scrubbed of them before it can reach a log or a status.
"""
from __future__ import annotations

import fcntl
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from plinth.git_auth import Credentials, git_env
from plinth.semver_range import ConstraintError, parse_constraint
from plinth.tree_archive import UnsafeArchiveError, extract_tree

KEEP_ARTIFACTS = 2
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024  # a GitOps repo is text; more is a mistake or an attack
_LINK_MODE = "120000"  # of a symbolic link, in git's trees


class SourceError(Exception):
    """Fetching failed; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class Ref:
    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, str] | None) -> Ref:
        spec = spec or {}
        ref = cls(spec.get("branch"), spec.get("tag"), spec.get("semver"), spec.get("commit"))
        return ref if any((ref.branch, ref.tag, ref.semver, ref.commit)) else cls(branch="main")


@dataclass(frozen=True)
class Artifact:
    revision: str  # "<ref>@sha1:<hash>", or "sha1:<hash>" for a bare commit
    commit: str
    path: Path


class GitSource:
    """The cache of one GitRepository object under `cache_dir`."""

    def __init__(self, cache_dir: Path, url: str, credentials: Credentials | None = None,
                 timeout: float = 60.0) -> None:
        self.cache_dir = cache_dir
        self.url = url
        self.credentials = credentials or Credentials()
        self.timeout = timeout
        self.mirror = cache_dir / "repo.git"
        self.artifacts = cache_dir / "artifacts"
        self.lock_file = cache_dir / "lock"

    def fetch(self, ref: Ref) -> Artifact:
        """Resolve `ref` on the remote, fetch that commit if new, and return its artifact."""
        with self._exclusive(), git_env(self.credentials) as env:
            repo = self._repo()
            name, commit = self._resolve(repo, ref, env)
            if not self._has(repo, commit):
                self._fetch_commit(repo, name, commit, ref.commit is not None, env)
            revision = f"{_short_ref(name)}@sha1:{commit}" if name else f"sha1:{commit}"
            return Artifact(revision, commit, self._artifact(repo, commit))

    def changed_paths(self, old: str, new: str) -> frozenset[str] | None:
        """The paths that differ between commits `old` and `new` (both names of a rename),
        from their trees alone (a shallow mirror has no history between them). None when that
        cannot be told: either commit is not in the mirror, or a symbolic link changed (a
        link redirects whatever path runs through it)."""
        with self._exclusive():
            if not (self.mirror / "HEAD").exists():
                return None
            repo = git.Repo(self.mirror)
            if not (self._has(repo, old) and self._has(repo, new)):
                return None
            try:
                out = str(repo.git.execute(["git", "diff-tree", "-r", "-z", "--raw",
                                            "--no-renames", "--no-commit-id", old, new],
                                           kill_after_timeout=self.timeout))
            except git.GitCommandError:
                return None
        # -z --raw: ":<old mode> <new mode> <old id> <new id> <status>" NUL <path> NUL, ...
        fields = out.split("\0")
        paths = set()
        for header, path in zip(fields[0::2], fields[1::2]):
            if _LINK_MODE in header.lstrip(":").split()[:2]:
                return None
            paths.add(path)
        return frozenset(paths)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the cache's lock: concurrent git fetches into one repository fail on git's own
        lock files, and two checkouts of one commit would race to rename into its folder."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:  # closing it releases the lock
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _repo(self) -> git.Repo:
        if (self.mirror / "HEAD").exists():
            return git.Repo(self.mirror)
        return git.Repo.init(self.mirror, bare=True)

    def _run(self, repo: git.Repo, *args: str, env: dict[str, str]) -> str:
        try:
            return str(repo.git.execute(["git", *args], env=env,
                                        kill_after_timeout=self.timeout))
        except git.GitCommandError as err:
            raise SourceError(self._scrub(f"git {args[0]} failed: {err.stderr.strip()}")) from None

    def _resolve(self, repo: git.Repo, ref: Ref, env: dict[str, str]) -> tuple[str | None, str]:
        if ref.commit:
            return (f"refs/heads/{ref.branch}" if ref.branch else None), ref.commit
        listing = self._run(repo, "ls-remote", "--", self.url, env=env)
        refs = {}
        for line in listing.splitlines():
            listed, _, refname = line.partition("\t")
            refs[refname] = listed
        if ref.semver:
            tags = [n.removeprefix("refs/tags/") for n in refs
                    if n.startswith("refs/tags/") and not n.endswith("^{}")]
            try:
                best = parse_constraint(ref.semver).best(tags)
            except ConstraintError as err:
                raise SourceError(str(err)) from None
            if best is None:
                raise SourceError(f"no tag matches semver {ref.semver!r} (tags: {len(tags)})")
            name = f"refs/tags/{best}"
        elif ref.tag:
            name = f"refs/tags/{ref.tag}"
        else:
            name = f"refs/heads/{ref.branch}"
        # An annotated tag lists its object and, peeled (^{}), the commit it points at.
        sha = refs.get(f"{name}^{{}}") or refs.get(name)
        if sha is None:
            raise SourceError(f"{_short_ref(name)} not found in {self._scrub(self.url)}")
        return name, sha

    @staticmethod
    def _has(repo: git.Repo, commit: str) -> bool:
        try:
            return repo.commit(commit).type == "commit"
        except (ValueError, git.BadName):
            return False

    def _fetch_commit(self, repo: git.Repo, name: str | None, commit: str, pinned: bool,
                      env: dict[str, str]) -> None:
        """Shallow for a branch tip or a tag; history when a pinned commit may lie behind."""
        if name is not None:
            self._run(repo, "fetch", *self._depth(repo, shallow=not pinned), "--", self.url,
                      name, env=env)
        else:
            try:  # servers that allow fetching a reachable commit by id
                self._run(repo, "fetch", "--depth=1", "--", self.url, commit, env=env)
            except SourceError:
                pass
        if not self._has(repo, commit):
            self._run(repo, "fetch", *self._depth(repo, shallow=False), "--", self.url,
                      "+refs/heads/*:refs/remotes/origin/*", env=env)
        if not self._has(repo, commit):
            raise SourceError(f"commit {commit} not found in {self._scrub(self.url)}")

    @staticmethod
    def _depth(repo: git.Repo, shallow: bool) -> list[str]:
        if shallow:
            return ["--depth=1"]
        return ["--unshallow"] if (Path(repo.git_dir) / "shallow").exists() else []

    def _artifact(self, repo: git.Repo, commit: str) -> Path:
        full = repo.commit(commit).hexsha
        target = self.artifacts / full
        if not target.exists():
            self.artifacts.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.artifacts))
            try:  # whatever fails (an unreadable blob, a full disk), no staging folder stays
                self._extract(repo, full, staging)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        self._prune_artifacts(keep=target)
        return target

    @staticmethod
    def _extract(repo: git.Repo, commit: str, staging: Path) -> None:
        buffer = io.BytesIO()
        try:
            repo.archive(buffer, treeish=commit, format="tar")
        except git.GitCommandError as err:  # a blob git cannot read: corrupt or missing
            detail = str(err.stderr or "").strip().splitlines()
            raise SourceError(f"commit {commit[:12]} cannot be read: "
                              f"{detail[-1] if detail else err}") from None
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            size = sum(member.size for member in tar.getmembers())
            if size > MAX_ARTIFACT_BYTES:
                raise SourceError(f"commit {commit[:12]} holds {size} bytes of files, more "
                                  f"than the limit of {MAX_ARTIFACT_BYTES}")
            try:
                extract_tree(tar, staging)
            except UnsafeArchiveError as err:
                raise SourceError(f"commit {commit[:12]}: {err}") from None

    def _prune_artifacts(self, keep: Path) -> None:
        entries = sorted((p for p in self.artifacts.iterdir() if p != keep and not
                          p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP_ARTIFACTS - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    def _scrub(self, text: str) -> str:
        return self.credentials.scrub(text)


def _short_ref(name: str | None) -> str:
    if name is None:
        return ""
    for prefix in ("refs/heads/", "refs/tags/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


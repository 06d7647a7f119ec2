"""One GitSource per GitRepository object, and how its Secret becomes git credentials."""
from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sync_controller.durations import parse_duration
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from plinth.git_auth import Credentials
from sync_controller.source import Artifact, GitSource, Ref, SourceError

T = TypeVar("T")


class Sources:
    def __init__(self, cluster: Cluster, cache_dir: Path) -> None:
        self.cluster = cluster
        self.cache_dir = cache_dir
        # Callers of one cache queue here, in the event loop, rather than each parking a worker
        # thread on the cache's file lock; a lock nobody holds or awaits is dropped.
        self._locks: weakref.WeakValueDictionary[Path, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    async def credentials(self, repo: dict[str, Any]) -> Credentials:
        """From the GitRepository's spec.secretRef; none when it names no Secret."""
        meta, spec = repo["metadata"], repo.get("spec") or {}
        secret_name = (spec.get("secretRef") or {}).get("name")
        if not secret_name:
            return Credentials()
        secret = await self.cluster.get(
            ObjectRef("", "Secret", meta["namespace"], secret_name, "v1"))
        if secret is None:
            raise SourceError(f"secret {meta['namespace']}/{secret_name} "
                              f"(spec.secretRef) not found")
        return Credentials.from_secret_data(secret.get("data") or {})

    async def _source(self, repo: dict[str, Any]) -> GitSource:
        meta, spec = repo["metadata"], repo.get("spec") or {}
        credentials = await self.credentials(repo)
        timeout = parse_duration(spec.get("timeout", "60s"), "spec.timeout")
        return GitSource(self.cache_dir / meta["uid"], spec["url"], credentials, timeout)

    async def fetch(self, repo: dict[str, Any]) -> Artifact:
        """Resolve spec.ref on the remote and fetch the commit (a thread: git blocks)."""
        source = await self._source(repo)
        return await self._in_turn(source, source.fetch,
                                   Ref.from_spec((repo.get("spec") or {}).get("ref")))

    async def checkout(self, repo: dict[str, Any], revision: str) -> Artifact:
        """The files of an artifact the GitRepository reported, fetched again if not cached."""
        branch = ((repo.get("spec") or {}).get("ref") or {}).get("branch")
        source = await self._source(repo)
        artifact = await self._in_turn(source, source.fetch,
                                       Ref(branch=branch, commit=_commit_of(revision)))
        return Artifact(revision, artifact.commit, artifact.path)

    async def changed_paths(self, repo: dict[str, Any], old_revision: str, new_revision: str
                            ) -> frozenset[str] | None:
        """What a new revision changed since an old one, by path; None when that cannot be
        told (a commit gone from the cache): then everything counts as changed."""
        source = await self._source(repo)
        return await self._in_turn(source, source.changed_paths, _commit_of(old_revision),
                                   _commit_of(new_revision))

    async def _in_turn(self, source: GitSource, work: Callable[..., T], *args: Any) -> T:
        """`work` in a thread (git blocks), one at a time per cache. Should a caller be
        cancelled, its thread runs on without this lock; the cache's file lock (GitSource)
        still keeps the next one out."""
        lock = self._locks.setdefault(source.cache_dir, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(work, *args)


def _commit_of(revision: str) -> str:
    """"main@sha1:<commit>" -> <commit>."""
    return revision.rpartition("sha1:")[2]

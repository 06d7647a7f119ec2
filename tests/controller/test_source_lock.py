"""One repository cache, many users at once: a fetch and checkouts of the same GitRepository
(threads of one controller, or another process on the same cache) take turns, and each gets
the tree of its own commit."""
from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import git
import pytest

from plinth.localenv.gitdaemon import GitDaemon
from sync_controller import source as source_module
from sync_controller.kube import Cluster
from sync_controller.source import GitSource, Ref
from sync_controller.sources import Sources

VERSIONS = ["1", "2", "3", "4"]


@pytest.fixture(scope="module")
def published(git_server: GitDaemon, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[str, dict[str, str]]:
    """A repository whose main has one commit per version, version.txt saying which."""
    git_server.create_repository("lock.git")
    url = git_server.url("lock.git")
    work = tmp_path_factory.mktemp("lock-work")
    repo = git.Repo.init(work, initial_branch="main")
    shas = {}
    for version in VERSIONS:
        (work / "version.txt").write_text(version)
        repo.index.add(["version.txt"])
        shas[version] = repo.index.commit(f"version {version}").hexsha
    repo.git.push(url, "main")
    return url, shas


@pytest.fixture(autouse=True)
def keep_every_artifact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts of older revisions are pruned; these tests read them all at the end."""
    monkeypatch.setattr(source_module, "KEEP_ARTIFACTS", 100)


def git_repository(url: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "app", "uid": "uid-1"},
            "spec": {"url": url, "ref": {"branch": "main"}}}


def version_of(path: Path) -> str:
    return (path / "version.txt").read_text()


@contextmanager
def held(lock_file: Path) -> Iterator[None]:
    """The cache's lock as another process would hold it: its own open file."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


async def fetch_and_checkouts(sources: Sources, repo: dict[str, Any], shas: dict[str, str]
                              ) -> list[tuple[str, str]]:
    """A fetch of main and two checkouts of every commit, all at once: (expected, got)."""
    async def fetch() -> tuple[str, str]:
        return VERSIONS[-1], version_of((await sources.fetch(repo)).path)

    async def checkout(version: str) -> tuple[str, str]:
        artifact = await sources.checkout(repo, f"main@sha1:{shas[version]}")
        return version, version_of(artifact.path)

    return await asyncio.gather(fetch(), *(checkout(v) for v in VERSIONS + VERSIONS))


def test_a_fetch_and_checkouts_at_once_each_get_their_own_tree(
        published: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, shas = published
    sources = Sources(cast(Cluster, None), tmp_path)  # no secretRef: the cluster is not asked
    results = asyncio.run(fetch_and_checkouts(sources, git_repository(url), shas))
    assert [expected for expected, _ in results] == [got for _, got in results]


def test_while_the_cache_is_held_fetches_wait_and_only_one_thread_waits(
        published: tuple[str, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, shas = published
    started: list[Ref] = []
    fetch = GitSource.fetch

    def counted(self: GitSource, ref: Ref) -> source_module.Artifact:
        started.append(ref)
        return fetch(self, ref)

    monkeypatch.setattr(GitSource, "fetch", counted)
    cache = tmp_path / "uid-1"

    async def scenario() -> list[tuple[str, str]]:
        with held(GitSource(cache, url).lock_file):
            work = asyncio.ensure_future(
                fetch_and_checkouts(Sources(cast(Cluster, None), tmp_path),
                                    git_repository(url), shas))
            await asyncio.sleep(1)  # room for a wrong implementation to go ahead
            assert not work.done() and not (cache / "artifacts").exists()
            assert len(started) == 1  # the others queue in the event loop, not in threads
        return await work

    results = asyncio.run(scenario())
    assert [expected for expected, _ in results] == [got for _, got in results]
    assert len(started) == 1 + 2 * len(VERSIONS)


def test_two_caches_on_one_directory_take_turns(published: tuple[str, dict[str, str]],
                                                tmp_path: Path) -> None:
    """What two processes sharing the cache directory would do, here as two threads."""
    url, shas = published
    refs = [Ref(branch="main")] + [Ref(branch="main", commit=shas[v]) for v in VERSIONS]

    def fetch(ref: Ref) -> str:
        return version_of(GitSource(tmp_path, url).fetch(ref).path)

    with ThreadPoolExecutor(len(refs) * 2) as pool:
        got = list(pool.map(fetch, refs + refs))
    assert got == 2 * [VERSIONS[-1], *VERSIONS]

"""push_change against a real git server: a push that loses a race redoes its change on top of
the winner's commit, never force-pushes, and gives up after a bound."""
from __future__ import annotations

import os
from pathlib import Path

import git
import pytest

from plinth.git_auth import Credentials
from plinth.git_push import PushError, push_change
from plinth.localenv.gitdaemon import GitDaemon


def _human_commit(url: str, where: Path, name: str) -> str:
    clone = git.Repo.clone_from(url, where, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    (where / name).write_text("by hand\n")
    clone.index.add([name])
    sha = clone.index.commit(f"human: {name}").hexsha
    clone.git.push("origin", "main")
    return sha


def test_lost_race_is_redone_on_top_and_keeps_the_human_commit(
        git_server: GitDaemon, tmp_path: Path) -> None:
    git_server.create_repository("race.git")
    url = git_server.url("race.git")
    push_change(url, Credentials(), "main", lambda w: (w / "a.txt").write_text("1\n") and "init")
    calls = []

    def change(work: Path) -> str:
        calls.append(work)
        if len(calls) == 1:  # someone pushes between our clone and our push
            _human_commit(url, tmp_path / "human", "human.txt")
        (work / "a.txt").write_text("2\n")
        return "automation: a.txt -> 2"

    pushed = push_change(url, Credentials(), "main", change)
    assert len(calls) == 2 and pushed.changed == ["a.txt"]
    history = list(git.Repo(git_server.repos / "race.git").iter_commits("main"))
    assert [c.message.split("\n")[0] for c in history] == [
        "automation: a.txt -> 2", "human: human.txt", "init"]


def test_a_branch_that_keeps_moving_is_given_up(git_server: GitDaemon, tmp_path: Path) -> None:
    git_server.create_repository("busy.git")
    url = git_server.url("busy.git")
    push_change(url, Credentials(), "main", lambda w: (w / "a.txt").write_text("1\n") and "init")
    counter = iter(range(10))

    def always_raced(work: Path) -> str:
        n = next(counter)
        _human_commit(url, tmp_path / f"human{n}", f"h{n}.txt")
        (work / "a.txt").write_text("2\n")
        return "automation"

    with pytest.raises(PushError, match="kept moving"):
        push_change(url, Credentials(), "main", always_raced)
    tip = git.Repo(git_server.repos / "busy.git").commit("main")
    assert tip.message.startswith("human")


def test_push_branch_for_a_pull_request_flow(git_server: GitDaemon) -> None:
    git_server.create_repository("pr.git")
    url = git_server.url("pr.git")
    push_change(url, Credentials(), "main", lambda w: (w / "a.txt").write_text("1\n") and "init")
    first = push_change(url, Credentials(), "main",
                        lambda w: (w / "a.txt").write_text("2\n") and "bump 2",
                        push_branch="image-updates")
    second = push_change(url, Credentials(), "main",
                         lambda w: (w / "b.txt").write_text("x\n") and "add b",
                         push_branch="image-updates")
    bare = git.Repo(git_server.repos / "pr.git")
    assert bare.commit("main").message.startswith("init")
    assert bare.commit("image-updates").hexsha == second.commit
    assert bare.commit("image-updates").parents[0].hexsha == first.commit

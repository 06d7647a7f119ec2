"""ManagedProcess: a server is found again by pid file and stopped, never a stranger."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from plinth.localenv.process import ManagedProcess, ServerStartError, free_port, port_open


def test_started_process_is_found_again_from_its_pid_file(tmp_path: Path) -> None:
    first = ManagedProcess("sleeper", tmp_path)
    first.start(["sleep", "30"])
    again = ManagedProcess("sleeper", tmp_path)
    assert again.running() and again.pid == first.pid
    again.start(["sleep", "30"])  # idempotent: no second process
    assert again.pid == first.pid
    again.stop()
    assert not first.running() and not (tmp_path / "sleeper.pid").exists()


def test_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    """A stale pid file naming a live unrelated process (our own pid) must not be signalled."""
    (tmp_path / "ghost.pid").write_text(f"{os.getpid()} 1\n")
    ghost = ManagedProcess("ghost", tmp_path)
    assert ghost.pid is None
    ghost.stop()  # would kill this test process if it trusted the pid
    assert not (tmp_path / "ghost.pid").exists()


def test_process_that_exits_during_start_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess("broken", tmp_path)
    proc.start(["sh", "-c", "echo cannot bind port >&2; exit 3"])
    with pytest.raises(ServerStartError, match="cannot bind port"):
        proc.wait_ready(lambda: False, timeout=10)


def test_free_port_is_free() -> None:
    assert not port_open(free_port())

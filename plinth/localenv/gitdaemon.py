"""Bare git repositories served over the git protocol by the real `git daemon`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import git

from plinth.localenv.process import ManagedProcess, free_port, port_open
from plinth.localenv.tools import find_tool


class GitDaemon:
    """Serves every bare repository under `state_dir/repos` at git://127.0.0.1:<port>/<name>.

    Pushes are enabled (receive-pack): the git protocol has no authentication, so this serves
    loopback only, for a laptop or CI.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.repos = state_dir / "repos"
        self.process = ManagedProcess("git-daemon", state_dir)
        self._port_file = state_dir / "port.json"

    @property
    def port(self) -> int:
        if self._port_file.exists():
            port = int(json.loads(self._port_file.read_text())["port"])
            if self.process.running() or not port_open(port):
                return port
        port = free_port()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._port_file.write_text(json.dumps({"port": port}))
        return port

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 30.0) -> None:
        self.repos.mkdir(parents=True, exist_ok=True)
        port = self.port
        self.process.start([
            str(find_tool("git")), "daemon",
            "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
            f"--base-path={self.repos}", "--export-all", "--enable=receive-pack",
            "--informative-errors", str(self.repos),
        ])
        self.process.wait_ready(lambda: port_open(port), timeout)

    def create_repository(self, name: str, default_branch: str = "main") -> Path:
        """A bare repository `name` (idempotent); `name` may not leave the repos folder."""
        path = (self.repos / name).resolve()
        if self.repos.resolve() not in path.parents:
            raise ValueError(f"repository name {name!r} escapes {self.repos}")
        if not (path / "HEAD").exists():
            git.Repo.init(path, bare=True, initial_branch=default_branch)
        return path

    def stop(self) -> None:
        self.process.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

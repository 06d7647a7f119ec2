"""The sync controller as a local process, for clusters where no kubelet runs its Deployment
(the local control plane): the same program the image runs, against the same API server."""
from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from plinth.localenv.process import ManagedProcess, free_port
from plinth.localenv.tools import tool_env


class LocalController:
    def __init__(self, state_dir: Path, kubeconfig: Path) -> None:
        self.state_dir = state_dir
        self.kubeconfig = kubeconfig
        self.process = ManagedProcess("sync-controller", state_dir)
        self._port_file = state_dir / "port.json"

    @property
    def port(self) -> int:
        if not self._port_file.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._port_file.write_text(json.dumps({"port": free_port()}))
        return int(json.loads(self._port_file.read_text())["port"])

    def running(self) -> bool:
        return self.process.running()

    def start(self, timeout: float = 60.0) -> None:
        self.process.start([
            sys.executable, "-m", "sync_controller", "run", "--kubeconfig", str(self.kubeconfig),
            "--cache-dir", str(self.state_dir / "cache"), "--probe-address", "127.0.0.1",
            "--probe-port", str(self.port)], env=tool_env())
        self.process.wait_ready(self._ready, timeout)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        self.process.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

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
        """The probe port (/metrics, /healthz, /readyz)."""
        return self._ports()["port"]

    @property
    def receiver_port(self) -> int:
        """Where webhook receivers listen (another controller on this host has 9292)."""
        return self._ports()["receiver_port"]

    def _ports(self) -> dict[str, int]:
        ports: dict[str, int] = json.loads(self._port_file.read_text()) \
            if self._port_file.exists() else {}
        if "port" not in ports or "receiver_port" not in ports:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            ports = {"port": ports.get("port") or free_port(), "receiver_port": free_port()}
            self._port_file.write_text(json.dumps(ports))
        return ports

    def running(self) -> bool:
        return self.process.running()

    def start(self, timeout: float = 60.0) -> None:
        self.process.start([
            sys.executable, "-m", "sync_controller", "run", "--kubeconfig", str(self.kubeconfig),
            "--cache-dir", str(self.state_dir / "cache"), "--probe-address", "127.0.0.1",
            "--probe-port", str(self.port), "--receiver-port", str(self.receiver_port)],
            env=tool_env())
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

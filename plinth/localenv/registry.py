"""A container registry (Docker distribution v2, Debian's `docker-registry`) with htpasswd auth."""
from __future__ import annotations

import json
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import yaml

from plinth.localenv.process import ManagedProcess, free_port
from plinth.localenv.tools import find_tool


class LocalRegistry:
    """Serves http://<address>:<port>/v2/ with one push/pull user whose password is generated.

    `address` is loopback, or the local node's address where containerd pulls from it; like the
    port it is kept in the state, so a later instance for the same folder finds it.

    The password sits only in `state_dir/credentials.json` (mode 0600) and, bcrypt-hashed, in the
    htpasswd file: callers read it from `credentials()` and must keep it out of logs.
    """

    user = "plinth"

    def __init__(self, state_dir: Path, address: str = "127.0.0.1") -> None:
        self.state_dir = state_dir
        self._address = address
        self.process = ManagedProcess("registry", state_dir)
        self._credentials = state_dir / "credentials.json"

    @property
    def host(self) -> str:
        """`<address>:<port>`, the registry part of an image reference."""
        state = self._state()
        return f"{state.get('address', '127.0.0.1')}:{state['port']}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def credentials(self) -> tuple[str, str]:
        return self.user, str(self._state()["password"])

    def start(self, timeout: float = 30.0) -> None:
        state = self._state()
        htpasswd = self.state_dir / "htpasswd"
        hashed = bcrypt.hashpw(str(state["password"]).encode(), bcrypt.gensalt(rounds=10))
        htpasswd.write_text(f"{self.user}:{hashed.decode()}\n")
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.state_dir / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": state["http_secret"]},
            "auth": {"htpasswd": {"realm": "plinth-local", "path": str(htpasswd)}},
        }
        config_file = self.state_dir / "config.yml"
        config_file.write_text(yaml.safe_dump(config))
        config_file.chmod(0o600)
        self.process.start([str(find_tool("docker-registry")), "serve", str(config_file)])
        self.process.wait_ready(self._answers_v2, timeout)

    def _answers_v2(self) -> bool:
        """Unauthenticated /v2/ answers 401 with a challenge once the registry serves."""
        try:
            urllib.request.urlopen(f"{self.url}/v2/", timeout=2)
        except urllib.error.HTTPError as err:
            return err.code == 401
        return False

    def _state(self) -> dict[str, object]:
        if self._credentials.exists():
            state: dict[str, object] = json.loads(self._credentials.read_text())
            return state
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "address": self._address,
            "port": free_port(),
            "password": secrets.token_urlsafe(24),
            "http_secret": secrets.token_urlsafe(24),
        }
        self._credentials.write_text(json.dumps(state))
        self._credentials.chmod(0o600)
        return state

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        self.process.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

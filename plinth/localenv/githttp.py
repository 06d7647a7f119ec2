"""Git over smart HTTP with authentication: the real `git http-backend` behind a small server.

`git daemon` has no authentication; a GitOps source with credentials needs HTTP basic auth or a
bearer token, as on CodeCommit or GitHub. Git's own CGI program speaks the protocol; this module
only checks credentials and passes requests to it. Run detached with
`python -m plinth.localenv.githttp STATE_DIR`.
"""
from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import git

from plinth.localenv.process import ManagedProcess, free_port
from plinth.localenv.tools import find_tool


class GitHttpServer:
    """Serves bare repositories under `state_dir/repos` at http://<address>:<port>/<name>.

    `address` is loopback, or the local node's address where pods must reach the server; it is
    kept in the state with the port, so a later instance for the same folder finds it. One user (`plinth`, generated password) and one bearer token are accepted; both live only in
    `state_dir/credentials.json` (mode 0600).
    """

    user = "plinth"

    def __init__(self, state_dir: Path, address: str = "127.0.0.1") -> None:
        self.state_dir = state_dir
        self._address = address
        self.repos = state_dir / "repos"
        self.process = ManagedProcess("git-http", state_dir)
        self._state_file = state_dir / "credentials.json"

    def _state(self) -> dict[str, str | int]:
        if self._state_file.exists():
            state: dict[str, str | int] = json.loads(self._state_file.read_text())
            return state
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {"address": self._address, "port": free_port(),
                 "password": secrets.token_urlsafe(24), "token": secrets.token_urlsafe(32)}
        self._state_file.write_text(json.dumps(state))
        self._state_file.chmod(0o600)
        return state

    @property
    def port(self) -> int:
        return int(self._state()["port"])

    @property
    def address(self) -> str:
        return str(self._state().get("address", "127.0.0.1"))

    def url(self, name: str) -> str:
        return f"http://{self.address}:{self.port}/{name}"

    def credentials(self) -> tuple[str, str]:
        return self.user, str(self._state()["password"])

    def token(self) -> str:
        return str(self._state()["token"])

    def create_repository(self, name: str, default_branch: str = "main") -> Path:
        path = (self.repos / name).resolve()
        if self.repos.resolve() not in path.parents:
            raise ValueError(f"repository name {name!r} escapes {self.repos}")
        if not (path / "HEAD").exists():
            git.Repo.init(path, bare=True, initial_branch=default_branch)
        return path

    def start(self, timeout: float = 30.0) -> None:
        self.repos.mkdir(parents=True, exist_ok=True)
        self._state()
        self.process.start([sys.executable, "-m", "plinth.localenv.githttp", str(self.state_dir)])
        self.process.wait_ready(self._answers, timeout)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url(""), timeout=2)
        except urllib.error.HTTPError as err:
            return err.code == HTTPStatus.UNAUTHORIZED
        return False

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        self.process.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _handler(repos: Path, user: str, password: str, token: str,
             backend: list[str]) -> type[BaseHTTPRequestHandler]:
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    bearer = f"Bearer {token}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silent: request lines carry no secret, but nothing here needs logging."""

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            return hmac.compare_digest(given, basic) or hmac.compare_digest(given, bearer)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            if not self._authorized():
                self.send_response(HTTPStatus.UNAUTHORIZED)
                self.send_header("WWW-Authenticate", 'Basic realm="plinth-git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", ""),
                "GIT_PROJECT_ROOT": str(repos),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "REMOTE_USER": user,
                "REMOTE_ADDR": self.client_address[0],
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            body = self._body()
            env["CONTENT_LENGTH"] = str(len(body))
            proc = subprocess.run(backend, input=body, env=env, capture_output=True)
            head, _, payload = proc.stdout.partition(b"\r\n\r\n")
            status = HTTPStatus.OK
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = HTTPStatus(int(value.split()[0]))
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    return Handler


def serve(state_dir: Path) -> None:
    state = json.loads((state_dir / "credentials.json").read_text())
    backend = [str(find_tool("git")), "http-backend"]
    handler = _handler(state_dir / "repos", GitHttpServer.user, state["password"], state["token"],
                       backend)
    address = str(state.get("address", "127.0.0.1"))
    ThreadingHTTPServer((address, int(state["port"])), handler).serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))

"""A real forge on this machine: Gitea (built by scripts/setup) with sqlite, headless.

The `local` stack's repositories live here, in an organisation, with pull requests, commit
statuses, branch protection and webhooks, as on a team's Gitea or on GitHub. Facts behind the
settings below (running as root, the static files, asynchronous push processing) are in the
shared notes `forge.md`.
"""
from __future__ import annotations

import base64
import getpass
import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypedDict, cast

from plinth.forge import ForgeClient
from plinth.localenv.process import ManagedProcess, ServerStartError, free_port
from plinth.localenv.tools import find_tool, tool_env

# What the admin token may do: organisations, repositories (statuses, pull requests, hooks,
# branch protection), issues (comments), and read its own user. Narrower tokens come from
# `LocalForge.token(name, scopes)`.
ADMIN_SCOPES = ("write:admin", "write:organization", "write:repository", "write:issue",
                "read:user")


class _Token(TypedDict):
    token: str
    scopes: list[str]


class _State(TypedDict):
    address: str
    port: int
    secret_key: str
    internal_token: str
    jwt_secret: str
    lfs_jwt_secret: str
    tokens: dict[str, _Token]
    admin_created: bool


class LocalForge:
    """Gitea at http://<address>:<port>/ with one admin user and named, scoped access tokens.

    `address` is loopback, or the local node's address where pods must reach the forge; like
    the port it is kept in the state, so a later instance for the same folder finds it. The
    instance secrets and every token sit only in `state_dir/forge.json` (mode 0600) and in
    app.ini (mode 0600); nothing here prints or logs them.
    """

    admin = "plinth-admin"  # `admin` is reserved; `plinth` is the stack's organisation

    def __init__(self, state_dir: Path, address: str = "127.0.0.1") -> None:
        self.state_dir = state_dir
        self._address = address
        self.process = ManagedProcess("gitea", state_dir)
        self._state_file = state_dir / "forge.json"
        self.app_ini = state_dir / "app.ini"

    # -- where it is and who may use it ------------------------------------------------------

    @property
    def address(self) -> str:
        return self._state()["address"]

    @property
    def port(self) -> int:
        return self._state()["port"]

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def clone_url(self, owner: str, name: str) -> str:
        return f"{self.url}/{owner}/{name}.git"

    def token(self, name: str = "admin", scopes: tuple[str, ...] | None = None) -> str:
        """The admin user's access token `name`, made once with `scopes` (default
        `ADMIN_SCOPES`) and kept; asking again with other scopes is an error.

        Git over HTTP takes it as the password of user `LocalForge.admin`."""
        state = self._state()
        kept = state["tokens"].get(name)
        if kept is not None:
            if scopes is not None and kept["scopes"] != list(scopes):
                raise ValueError(f"token {name!r} exists with scopes {kept['scopes']}, "
                                 f"not {list(scopes)}: choose another name")
            return kept["token"]
        scopes = scopes or ADMIN_SCOPES
        output = self._gitea("admin", "user", "generate-access-token", "--username", self.admin,
                             "--token-name", name, "--scopes", ",".join(scopes), "--raw")
        # As root every command prints a warning line first; the token is the last line.
        token = output.strip().splitlines()[-1].strip()
        state["tokens"][name] = {"token": token, "scopes": list(scopes)}
        self._save(state)
        return token

    def client(self, token_name: str = "admin") -> ForgeClient:
        """A client with the kept token `token_name` (made with `ADMIN_SCOPES` if new)."""
        return ForgeClient.gitea(self.url, self.token(token_name))

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Configure, migrate, make the admin user and its token, serve; a running forge is
        only waited for."""
        if not self.process.running():
            self._write_app_ini()
            self._gitea("migrate")
            self._ensure_admin()
            self.token()
            self.process.start([str(find_tool("gitea")), "web", *self._config_args()],
                               env=self._env())
        self.process.wait_ready(self._api_answers, timeout)

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        self.process.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------------

    def _api_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/version", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.URLError:
            return False

    def _state(self) -> _State:
        if self._state_file.exists():
            return cast(_State, json.loads(self._state_file.read_text()))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state: _State = {
            "address": self._address,
            "port": free_port(),
            "secret_key": secrets.token_urlsafe(48),
            "internal_token": secrets.token_urlsafe(48),
            # Gitea wants these two as unpadded base64url of 32 bytes
            "jwt_secret": _jwt_secret(),
            "lfs_jwt_secret": _jwt_secret(),
            "tokens": {},
            "admin_created": False,
        }
        self._save(state)
        return state

    def _save(self, state: _State) -> None:
        self._state_file.touch(mode=0o600)
        self._state_file.chmod(0o600)
        self._state_file.write_text(json.dumps(state))

    def _write_app_ini(self) -> None:
        state = self._state()
        root = self.state_dir.resolve()
        user = getpass.getuser()
        settings: dict[str, dict[str, object]] = {
            "": {"APP_NAME": "Plinth local forge", "RUN_MODE": "prod", "RUN_USER": user,
                 "WORK_PATH": root,
                 "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT": os.geteuid() == 0},
            "server": {"PROTOCOL": "http", "HTTP_ADDR": self.address, "HTTP_PORT": self.port,
                       "DOMAIN": self.address, "ROOT_URL": f"{self.url}/",
                       # git hooks of pushes call back into Gitea here
                       "LOCAL_ROOT_URL": f"{self.url}/", "DISABLE_SSH": True,
                       "START_SSH_SERVER": False, "OFFLINE_MODE": True,
                       "STATIC_ROOT_PATH": _static_root(), "APP_DATA_PATH": root / "data",
                       "LFS_START_SERVER": False, "LFS_JWT_SECRET": state["lfs_jwt_secret"]},
            "database": {"DB_TYPE": "sqlite3", "PATH": root / "data" / "gitea.db"},
            "repository": {"ROOT": root / "repositories", "DEFAULT_BRANCH": "main",
                           "DEFAULT_PRIVATE": "private"},
            "security": {"INSTALL_LOCK": True, "SECRET_KEY": state["secret_key"],
                         "INTERNAL_TOKEN": state["internal_token"]},
            "oauth2": {"JWT_SECRET": state["jwt_secret"]},
            "service": {"DISABLE_REGISTRATION": True},
            # deliveries go to receivers on loopback or on the local node's private address
            "webhook": {"ALLOWED_HOST_LIST": "loopback,private", "DELIVER_TIMEOUT": 10},
            "indexer": {"ISSUE_INDEXER_TYPE": "db"},
            "session": {"PROVIDER": "memory"},
            "mailer": {"ENABLED": False},
            "packages": {"ENABLED": False},
            "actions": {"ENABLED": False},
            "cron.update_checker": {"ENABLED": False},
            "log": {"MODE": "console", "LEVEL": "Warn", "ROOT_PATH": root / "log"},
        }
        self.app_ini.touch(mode=0o600)
        self.app_ini.chmod(0o600)
        self.app_ini.write_text(_ini(settings))

    def _ensure_admin(self) -> None:
        state = self._state()
        if state.get("admin_created"):
            return
        # A random password Gitea never shows: the admin signs in with its tokens only.
        try:
            self._gitea("admin", "user", "create", "--admin", "--username", self.admin,
                        "--email", f"{self.admin}@forge.local", "--random-password",
                        "--must-change-password=false")
        except ServerStartError as err:
            if "already exists" not in str(err):
                raise
        state["admin_created"] = True
        self._save(state)

    def _config_args(self) -> list[str]:
        return ["--config", str(self.app_ini.resolve()),
                "--work-path", str(self.state_dir.resolve())]

    def _env(self) -> dict[str, str]:
        return tool_env({"GITEA_WORK_DIR": str(self.state_dir.resolve()),
                         "HOME": str(self.state_dir.resolve() / "home"),
                         "USER": getpass.getuser()})

    def _gitea(self, *args: str) -> str:
        """Run a gitea command; its output is returned, never logged (it may hold a secret)."""
        proc = subprocess.run([str(find_tool("gitea")), *args, *self._config_args()],
                              env=self._env(), text=True, capture_output=True, timeout=120)
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
            raise ServerStartError(f"gitea {' '.join(args[:3])} failed ({proc.returncode}): "
                                   + " | ".join(said))
        return proc.stdout


def _static_root() -> Path:
    """templates/, options/ and public/ of the pinned Gitea: `static/` beside its `bin/`."""
    static = find_tool("gitea").resolve().parent.parent / "static"
    if not (static / "templates").is_dir():
        raise ServerStartError(f"Gitea's static files are not in {static}; run scripts/setup")
    return static


def _jwt_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _ini(settings: dict[str, dict[str, object]]) -> str:
    lines: list[str] = []
    for section, values in settings.items():
        if section:
            lines.append(f"\n[{section}]")
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"

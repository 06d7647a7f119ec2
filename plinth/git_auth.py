"""Git credentials for every git call Plinth makes (the controller's fetches, the GitOpsRepo
component's pushes): passed through the environment, never argv or a URL, and scrubbed from any
message before it can reach a log, a status or a Pulumi output."""
from __future__ import annotations

import base64
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    """username/password (basic), bearerToken, or an SSH identity with its known_hosts."""

    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    identity: str | None = None
    known_hosts: str | None = None

    @classmethod
    def from_secret_data(cls, data: dict[str, str]) -> Credentials:
        """From the base64 `data` of a Kubernetes Secret with the keys above."""
        def value(key: str) -> str | None:
            raw = data.get(key)
            return base64.b64decode(raw).decode() if raw else None

        return cls(value("username"), value("password"), value("bearerToken"),
                   value("identity"), value("known_hosts"))

    def secrets(self) -> list[str]:
        values = [self.password, self.bearer_token, self.identity]
        if self.username and self.password:
            values.append(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())
        return [v for v in values if v]

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)  # user:password@ in a URL


@contextmanager
def git_env(credentials: Credentials) -> Iterator[dict[str, str]]:
    """A minimal environment for git with `credentials` as config (git >= 2.31)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false",
           "GIT_CONFIG_NOSYSTEM": "1"}
    config: list[tuple[str, str]] = []
    if credentials.bearer_token:
        config.append(("http.extraHeader", f"Authorization: Bearer {credentials.bearer_token}"))
    elif credentials.username and credentials.password:
        token = base64.b64encode(
            f"{credentials.username}:{credentials.password}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (name, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = name
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    if not credentials.identity:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="plinth-ssh-") as tmp:
        key = Path(tmp) / "identity"
        identity = credentials.identity
        key.write_text(identity if identity.endswith("\n") else identity + "\n")
        key.chmod(0o600)
        known = Path(tmp) / "known_hosts"
        known.write_text(credentials.known_hosts or "")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} "
            f"-o StrictHostKeyChecking=yes -o BatchMode=yes")
        yield env

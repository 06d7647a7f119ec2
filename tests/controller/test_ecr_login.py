"""ECR logins from the AWS API, against moto in server mode (a real HTTP endpoint)."""
from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from plinth.localenv.process import free_port
from sync_controller.ecr_login import REFRESH_BEFORE, EcrLogins
from sync_controller.registry_client import RegistryError

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """moto's server on loopback; yields the list of ECR API calls it answered."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    calls: list[str] = []
    original = boto3.client

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(args[0]))
        return original(*args, **kwargs)  # type: ignore[call-overload]
    monkeypatch.setattr(boto3, "client", counting)
    yield calls
    server.stop()


def test_token_is_fetched_cached_and_refreshed_before_expiry(aws: list[str]) -> None:
    now = [0.0]
    logins = EcrLogins(clock=lambda: now[0])
    first = logins.login(HOST)
    assert first.username == "AWS" and first.password
    assert logins.login(HOST) == first and aws == ["ecr"]  # cached: no second API call
    expires = logins._cache[HOST][1]
    now[0] = expires - REFRESH_BEFORE + 1  # inside the refresh window
    logins.login(HOST)
    assert aws == ["ecr", "ecr"]


def test_a_non_ecr_host_is_refused_clearly() -> None:
    with pytest.raises(RegistryError, match="needs an ECR host"):
        EcrLogins().login("ghcr.io")

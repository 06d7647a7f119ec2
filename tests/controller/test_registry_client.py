"""The registry v2 client against the real registry server with htpasswd auth."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest

from plinth.localenv.registry import LocalRegistry
from sync_controller.registry_client import ImageName, Login, RegistryClient, RegistryError
from tests.controller.images import push_image
from tests.fixtures.servers import require_tools
from tests.fixtures.token_registry import TokenRegistry

T = TypeVar("T")


def run(registry: LocalRegistry, image: str, login: Login,
        call: Callable[[RegistryClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with aiohttp.ClientSession() as session:
            return await call(RegistryClient(session, ImageName.parse(image), login))
    return asyncio.run(go())


def login_of(registry: LocalRegistry) -> Login:
    user, password = registry.credentials()
    return Login(user, password)


def test_lists_every_tag_across_pages(oci_registry: LocalRegistry) -> None:
    tags = [f"1.0.{i}" for i in range(105)]  # past the first page of 100
    for tag in tags:
        push_image(oci_registry, "paged/app", tag)
    listed = run(oci_registry, f"{oci_registry.host}/paged/app", login_of(oci_registry),
                 lambda c: c.tags())
    assert sorted(listed) == sorted(tags)


def test_digest_follows_a_repushed_mutable_tag(oci_registry: LocalRegistry) -> None:
    first = push_image(oci_registry, "mutable/app", "main", "build 1")
    image = f"{oci_registry.host}/mutable/app"
    assert run(oci_registry, image, login_of(oci_registry), lambda c: c.digest("main")) == first
    second = push_image(oci_registry, "mutable/app", "main", "build 2")
    assert second != first
    assert run(oci_registry, image, login_of(oci_registry), lambda c: c.digest("main")) == second


def test_wrong_or_missing_credentials_are_clear_and_secret_free(
        oci_registry: LocalRegistry) -> None:
    push_image(oci_registry, "private/app", "1.0.0")
    image = f"{oci_registry.host}/private/app"
    with pytest.raises(RegistryError, match="unauthorized") as wrong:
        run(oci_registry, image, Login("plinth", "not-the-s3cret"), lambda c: c.tags())
    assert "not-the-s3cret" not in str(wrong.value)
    with pytest.raises(RegistryError, match="needs credentials"):
        run(oci_registry, image, Login(), lambda c: c.tags())


def test_dockerconfigjson_login_and_unreachable_registry() -> None:
    config = '{"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}}}'
    assert Login.from_dockerconfigjson(config, "127.0.0.1:5000") == Login("user", "pass")
    assert ImageName.parse("nginx") == ImageName("registry-1.docker.io", "library/nginx")
    assert ImageName.parse("ghcr.io/org/app") == ImageName("ghcr.io", "org/app")
    with pytest.raises(RegistryError, match="127.0.0.1:9"):
        asyncio.run(_tags_of("127.0.0.1:9/nothing/here"))


async def _tags_of(image: str) -> list[str]:
    async with aiohttp.ClientSession() as session:
        return await RegistryClient(session, ImageName.parse(image), Login(), timeout=3).tags()


def test_bearer_token_flow_against_a_token_auth_registry(tmp_path: Path) -> None:
    """The registry challenges with Bearer; the client gets a token for the pull scope from the
    realm with its Basic credentials, and the registry verifies the signed token. The repository
    does not exist: a 404 (not a 401) proves the registry accepted the token."""
    require_tools("docker-registry")
    registry = TokenRegistry(tmp_path / "token-registry")
    image = ImageName.parse(f"{registry.host}/team/app")
    registry.start()
    try:
        with pytest.raises(RegistryError, match="repository not found"):
            asyncio.run(_with(image, Login(registry.user, registry.password),
                              lambda c: c.tags()))
        assert registry.tokens_issued == 1
        with pytest.raises(RegistryError, match="token service answered HTTP 401") as wrong:
            asyncio.run(_with(image, Login(registry.user, "wrong-s3cret"), lambda c: c.tags()))
        assert "wrong-s3cret" not in str(wrong.value)
    finally:
        registry.stop()


async def _with(image: ImageName, login: Login,
                call: Callable[[RegistryClient], Awaitable[T]]) -> T:
    async with aiohttp.ClientSession() as session:
        return await call(RegistryClient(session, image, login))

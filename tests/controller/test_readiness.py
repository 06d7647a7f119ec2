"""Readiness against a stand-in API server: its answer decides, and probes share one request."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import kopf
from aiohttp import web

from sync_controller.kube import Connection
from sync_controller.readiness import Readiness
from tests.controller.stand_in import stand_in_server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def with_api_server(status: int, test: Callable[[Readiness, list[str], Clock],
                                                      Awaitable[None]]) -> None:
    """Run `test` with a Readiness (operator started) whose API server answers `status`."""
    asked: list[str] = []

    async def readyz(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Authorization", ""))
        return web.Response(status=status, text="ok" if status == 200 else "etcd failed")

    async with stand_in_server("/readyz", readyz) as url:
        api = Connection(lambda: kopf.ConnectionInfo(server=url, token="t0ken"))
        started = asyncio.Event()
        started.set()
        clock = Clock()
        try:
            await test(Readiness(api, started, ttl=5.0, clock=clock), asked, clock)
        finally:
            await api.close()


def test_probes_within_the_ttl_cost_one_request_with_the_controllers_credentials() -> None:
    async def test(readiness: Readiness, asked: list[str], clock: Clock) -> None:
        answers = await asyncio.gather(*(readiness.problem() for _ in range(5)))
        clock.now = 4.9
        assert await readiness.problem() is None
        assert answers == [None] * 5 and asked == ["Bearer t0ken"]
        clock.now = 5.0
        assert await readiness.problem() is None
        assert len(asked) == 2
    asyncio.run(with_api_server(200, test))


def test_an_api_server_that_cannot_serve_makes_the_controller_unready() -> None:
    async def test(readiness: Readiness, asked: list[str], clock: Clock) -> None:
        assert await readiness.problem() == \
            "API server answered 500 Internal Server Error to GET /readyz"
    asyncio.run(with_api_server(500, test))


def test_refused_credentials_make_the_controller_unready() -> None:
    async def test(readiness: Readiness, asked: list[str], clock: Clock) -> None:
        assert await readiness.problem() == \
            "API server answered 401 Unauthorized to GET /readyz"
    asyncio.run(with_api_server(401, test))


def test_not_ready_until_the_operator_has_started() -> None:
    async def test(readiness: Readiness, asked: list[str], clock: Clock) -> None:
        readiness.started.clear()
        assert await readiness.problem() == "starting: the operator is not running yet"
        readiness.started.set()
        assert await readiness.problem() is None
    asyncio.run(with_api_server(200, test))

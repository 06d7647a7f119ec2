"""A stand-in API server for the controller's connection tests: what a real one cannot be made
to answer on cue (a refused token, a failing /readyz)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from plinth.localenv.process import free_port


@asynccontextmanager
async def stand_in_server(path: str, handler: Callable[[web.Request], Awaitable[web.Response]]
                          ) -> AsyncIterator[str]:
    """Answers GET `path` with `handler` on loopback; yields the server's URL."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()

"""Readiness: the controller can do its job only while its operator runs and the API server answers.

A controller whose API server is gone reconciles nothing, so /readyz must say so (and why) instead
of `ok`. The API server is asked for its own /readyz, which fails when it cannot serve (no
etcd, say) and when our credentials are refused, at most once per `ttl` however often probes
come; concurrent probes share that one request. Liveness ignores all of this on purpose:
restarting the controller brings no API server back.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from sync_controller.kube import Connection

TTL = 5.0  # seconds an answer stands: a probe every 10 s costs at most one request
TIMEOUT = 2.0  # a hanging API server is as unready as an absent one


class Readiness:
    def __init__(self, api: Connection, started: asyncio.Event, *, ttl: float = TTL,
                 timeout: float = TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.started = api, started
        self.ttl, self.timeout, self.clock = ttl, timeout, clock
        self._lock = asyncio.Lock()
        self._asked_at: float | None = None
        self._api_problem: str | None = None

    async def problem(self) -> str | None:
        """None when ready; otherwise one line saying why not (the API server's state first,
        since an operator cannot start without it)."""
        api_problem = await self._api()
        if api_problem is not None:
            return api_problem
        if not self.started.is_set():
            return "starting: the operator is not running yet"
        return None

    async def _api(self) -> str | None:
        async with self._lock:
            now = self.clock()
            if self._asked_at is None or now - self._asked_at >= self.ttl:
                self._api_problem = await self._ask()
                self._asked_at = self.clock()
            return self._api_problem

    async def _ask(self) -> str | None:
        try:
            response = await self.api.request("GET", "/readyz", timeout=self.timeout)
            response.release()
            if response.status != 200:
                return f"API server answered {response.status} {response.reason} to GET /readyz"
        except asyncio.TimeoutError:
            return f"API server did not answer GET /readyz within {self.timeout:g}s"
        except aiohttp.ClientError as err:
            return f"API server unreachable: {err}"
        return None

"""Notices for one commit and context land in the order they were emitted, whichever task
reaches the forge first: a newer state is never overwritten by an older one (CI once saw
failure, pending, failure). The cluster and the post are stand-ins here: what is under test
is the ordering, not the API server or the forge (test_commit_status.py has those)."""
from __future__ import annotations

import asyncio
from typing import Any

from plinth.forge import StatusState
from sync_controller.api import ProviderSpec
from sync_controller.notify import Notice, Notifier

ALERT = {"apiVersion": "plinth.dev/v1", "kind": "Alert",
         "metadata": {"name": "a", "namespace": "ns"},
         "spec": {"providerRef": {"name": "forge"},
                  "eventSources": [{"kind": "Kustomization", "name": "app"}]}}
PROVIDER = {"apiVersion": "plinth.dev/v1", "kind": "Provider",
            "metadata": {"name": "forge", "namespace": "ns"},
            "spec": {"type": "gitea", "address": "http://forge.example/org/repo",
                     "secretRef": {"name": "forge"}}}


class _SlowFirstList:
    """Answers the first Alert listing late, as a busy API server may."""

    def __init__(self) -> None:
        self.lists = 0

    async def list(self, *_: Any) -> list[dict[str, Any]]:
        self.lists += 1
        if self.lists == 1:
            await asyncio.sleep(0.3)
        return [ALERT]

    async def get(self, _: Any) -> dict[str, Any]:
        return PROVIDER


def _notice(state: StatusState) -> Notice:
    return Notice("Kustomization", "ns", "app", state, "r", "m", "main@sha1:" + "a" * 40)


def test_an_older_notice_never_lands_after_a_newer_one() -> None:
    posted: list[str] = []

    async def post(_: ProviderSpec, __: str, notice: Notice) -> None:
        posted.append(notice.state.value)

    async def scenario() -> None:
        notifier = Notifier(_SlowFirstList(), "test")  # type: ignore[arg-type]
        notifier._post = post  # type: ignore[method-assign]
        notifier.emit(_notice(StatusState.PENDING))  # routed late
        notifier.emit(_notice(StatusState.FAILURE))
        await asyncio.sleep(0.6)
        notifier.emit(_notice(StatusState.FAILURE))  # a retry of the same outcome
        await asyncio.sleep(0.2)
    asyncio.run(scenario())
    assert posted == ["failure"]

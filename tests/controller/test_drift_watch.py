"""The drift watch against the real API server: a stream the server ends is resumed from the
last version it saw, so an unchanged cluster sends no event again; an edit is still seen, also
one made while the Kustomization reconciled; a version the server no longer has is a 410."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sync_controller import drift_watch
from sync_controller.drift_watch import DriftWatch, Owner
from sync_controller.inventory import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef
from sync_controller.kube import Cluster, Connection, KubeError, login
from tests.controller.harness import Kube


def owned_configmap(name: str, namespace: str, owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {OWNER_NAMESPACE_LABEL: owner[0], OWNER_NAME_LABEL: owner[1]}},
            "data": {"color": "blue"}}


class Recording(DriftWatch):
    """Every event the watch is shown, and every wake it asks for."""

    def __init__(self, cluster: Cluster, versions: dict[str, str]) -> None:
        self.events: list[tuple[str, str]] = []
        self.woken: list[Owner] = []
        self.versions: dict[str, str] | None = versions  # None: the owner reconciles
        super().__init__(cluster, lambda owner: self.versions, self.woken.append)

    def seen(self, owner: Owner, event: str, obj: dict[str, Any]) -> None:
        self.events.append((event, obj["metadata"]["name"]))
        super().seen(owner, event, obj)


OWNER = ("flux-system", "apps")


def with_watch(kube: Kube, monkeypatch: pytest.MonkeyPatch,
               test: Callable[[Cluster, str, Recording, list[dict[str, Any]]], Awaitable[None]]
               ) -> None:
    """Run `test` with ConfigMaps a and b applied by the controller in a namespace of their
    own, and a recording drift watch that follows them at the versions applied."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))  # login sets it for kopf
    namespace = f"drift-watch-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)

    async def run() -> None:
        connection = Connection(lambda: login(str(kube.kubeconfig)))
        try:
            cluster = await Cluster.connect(connection)
            applied = [await cluster.apply(owned_configmap(name, namespace, OWNER))
                       for name in ("a", "b")]
            watch = Recording(cluster, {ObjectRef.of(obj).id: obj["metadata"]["resourceVersion"]
                                        for obj in applied})
            watch.follow(OWNER, [ObjectRef.of(obj) for obj in applied])
            try:
                await test(cluster, namespace, watch, applied)
            finally:
                watch.close()
        finally:
            await connection.close()
    try:
        asyncio.run(run())
    finally:
        kube.run("delete", "namespace", namespace, "--wait=false")


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


def test_a_stream_resumes_where_the_server_ended_it(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drift_watch, "WATCH_SECONDS", 1)  # the server ends each stream at once

    async def test(cluster: Cluster, namespace: str, watch: Recording,
                   applied: list[dict[str, Any]]) -> None:
        await asyncio.sleep(6)  # streams of 1 s, 1 s and 2 s apart: three of them
        assert sorted(watch.events) == [("ADDED", "a"), ("ADDED", "b")]
        assert watch.woken == []

        await asyncio.to_thread(kube.run, "patch", "configmap", "a", "-n", namespace,
                                "--type=merge", "-p", '{"data": {"color": "red"}}')
        await until(lambda: bool(watch.woken))
        assert watch.woken == [OWNER]
        assert watch.events[2:] == [("MODIFIED", "a")]
    with_watch(kube, monkeypatch, test)


def test_an_edit_made_while_the_owner_reconciled_is_drift_when_it_is_done(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(cluster: Cluster, namespace: str, watch: Recording,
                   applied: list[dict[str, Any]]) -> None:
        refs = [ObjectRef.of(obj) for obj in applied]
        await until(lambda: len(watch.events) == 2)

        # a reconcile: the controller's own write, then a hand edit of another object
        watch.versions = None
        again = await cluster.apply(dict(owned_configmap("a", namespace, OWNER),
                                         data={"color": "green"}))
        await asyncio.to_thread(kube.run, "patch", "configmap", "b", "-n", namespace,
                                "--type=merge", "-p", '{"data": {"color": "red"}}')
        await until(lambda: len(watch.events) == 4)
        assert watch.woken == []
        watch.versions = {refs[0].id: again["metadata"]["resourceVersion"],
                          refs[1].id: applied[1]["metadata"]["resourceVersion"]}
        watch.follow(OWNER, refs)
        assert watch.woken == [OWNER]

        # the reconcile it woke puts b back: its own write, no drift
        watch.woken.clear()
        watch.versions = None
        healed = await cluster.apply(owned_configmap("b", namespace, OWNER))
        await until(lambda: len(watch.events) == 5)
        watch.versions = {refs[0].id: again["metadata"]["resourceVersion"],
                          refs[1].id: healed["metadata"]["resourceVersion"]}
        watch.follow(OWNER, refs)
        assert watch.woken == []
    with_watch(kube, monkeypatch, test)


def test_a_version_the_server_no_longer_has_is_a_410(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(cluster: Cluster, namespace: str, watch: Recording,
                   applied: list[dict[str, Any]]) -> None:
        with pytest.raises(KubeError) as raised:
            async for _ in cluster.watch("v1", "ConfigMap", namespace, "plinth=none", 5,
                                         resource_version="1"):
                pass
        assert raised.value.status == 410, raised.value
    with_watch(kube, monkeypatch, test)

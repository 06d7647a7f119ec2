"""The drift watch against the real API server: a stream the server ends is resumed from the
last version it saw, so an unchanged cluster sends no event again; an edit is still seen; a
version the server no longer has starts the stream over from every object."""
from __future__ import annotations

import asyncio
import uuid
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
        super().__init__(cluster, lambda owner: versions, self.woken.append)

    def seen(self, owner: Owner, event: str, obj: dict[str, Any]) -> None:
        self.events.append((event, obj["metadata"]["name"]))
        super().seen(owner, event, obj)


def test_a_stream_resumes_where_the_server_ended_it(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    monkeypatch.setattr(drift_watch, "WATCH_SECONDS", 1)  # the server ends each stream at once
    namespace = f"drift-watch-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    owner = ("flux-system", "apps")

    async def test() -> None:
        connection = Connection(lambda: login(str(kube.kubeconfig)))
        try:
            cluster = await Cluster.connect(connection)
            applied = [await cluster.apply(owned_configmap(name, namespace, owner))
                       for name in ("a", "b")]
            versions = {ObjectRef.of(obj).id: obj["metadata"]["resourceVersion"]
                        for obj in applied}
            watch = Recording(cluster, versions)
            watch.follow(owner, [ObjectRef.of(obj) for obj in applied])
            await asyncio.sleep(6)  # streams of 1 s, 1 s and 2 s apart: three of them
            assert sorted(watch.events) == [("ADDED", "a"), ("ADDED", "b")]
            assert watch.woken == []

            await asyncio.to_thread(kube.run, "patch", "configmap", "a", "-n", namespace,
                                    "--type=merge", "-p", '{"data": {"color": "red"}}')
            for _ in range(100):
                if watch.woken:
                    break
                await asyncio.sleep(0.1)
            assert watch.woken == [owner]
            assert watch.events[2:] == [("MODIFIED", "a")]
            watch.close()
        finally:
            await connection.close()
    try:
        asyncio.run(test())
    finally:
        kube.run("delete", "namespace", namespace, "--wait=false")


def test_a_version_the_server_no_longer_has_is_a_410(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))

    async def test() -> None:
        connection = Connection(lambda: login(str(kube.kubeconfig)))
        try:
            cluster = await Cluster.connect(connection)
            with pytest.raises(KubeError) as raised:
                async for _ in cluster.watch("v1", "ConfigMap", "default", "plinth=none", 5,
                                             resource_version="1"):
                    pass
            assert raised.value.status == 410, raised.value
        finally:
            await connection.close()
    asyncio.run(test())

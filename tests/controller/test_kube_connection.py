"""The controller's own connection to the API server: credentials as kopf reads them, a
refused token logs in again once, discovery asks per group version and again for a kind it
did not know (a CRD applied a moment ago)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import kopf
import pytest
from aiohttp import web

from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, Connection, KubeError, UnknownKind, login
from tests.controller.harness import Kube, wait_for
from tests.controller.stand_in import stand_in_server


async def with_server(accepted: str, test: Callable[[Connection, list[str], list[str]],
                                                    Awaitable[None]],
                      tokens: list[str]) -> None:
    """A stand-in API server that accepts only the token `accepted`; the connection logs in
    with each of `tokens` in turn."""
    asked: list[str] = []
    logins: list[str] = []

    async def api(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {accepted}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async with stand_in_server("/api", api) as url:
        def next_login() -> kopf.ConnectionInfo:
            logins.append(tokens[min(len(logins), len(tokens) - 1)])
            return kopf.ConnectionInfo(server=url, token=logins[-1])

        connection = Connection(next_login)
        try:
            await test(connection, asked, logins)
        finally:
            await connection.close()


def test_a_refused_token_logs_in_again_once() -> None:
    async def test(connection: Connection, asked: list[str], logins: list[str]) -> None:
        await Cluster.connect(connection)  # the rotated token is read and used
        await Cluster.connect(connection)  # and kept
        assert asked == ["Bearer old", "Bearer new", "Bearer new"] and logins == ["old", "new"]
    asyncio.run(with_server("new", test, ["old", "new"]))


def test_requests_refused_at_once_log_in_again_once() -> None:
    async def test(connection: Connection, asked: list[str], logins: list[str]) -> None:
        await asyncio.gather(*(Cluster.connect(connection) for _ in range(5)))
        assert logins == ["old", "new"] and asked.count("Bearer new") == 5
    asyncio.run(with_server("new", test, ["old", "new"]))


def test_a_token_refused_again_is_an_error_not_a_loop() -> None:
    async def test(connection: Connection, asked: list[str], logins: list[str]) -> None:
        with pytest.raises(KubeError) as raised:
            await Cluster.connect(connection)
        assert raised.value.status == 401 and str(raised.value) == "API server: Unauthorized"
        assert asked == ["Bearer old", "Bearer old"] and logins == ["old", "old"]
    asyncio.run(with_server("new", test, ["old"]))


def test_discovery_learns_a_new_crd_and_addresses_objects_by_scope(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    group = "discovery.plinth.test"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Cluster",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}}}]}}

    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))  # login sets it for kopf

    async def test() -> None:
        connection = Connection(lambda: login(str(kube.kubeconfig)))
        try:
            cluster = await Cluster.connect(connection)
            configmaps = await cluster.resource("v1", "ConfigMap")
            assert (configmaps.plural, configmaps.namespaced) == ("configmaps", True)
            assert configmaps.path("a", "ns") == "/api/v1/namespaces/ns/configmaps/a"
            with pytest.raises(UnknownKind):
                await cluster.resource(f"{group}/v1", "Widget")
            await cluster.apply(crd)
            await asyncio.to_thread(wait_for, lambda: kube.run(
                "get", f"crd/widgets.{group}", "-o",
                "jsonpath={.status.conditions[?(@.type=='Established')].status}"
            ).stdout == "True", 30, "the CRD to be established")
            widgets = await cluster.resource(f"{group}/v1", "Widget")
            assert (widgets.plural, widgets.namespaced) == ("widgets", False)
            assert widgets.path("w") == f"/apis/{group}/v1/widgets/w"
            widget = {"apiVersion": f"{group}/v1", "kind": "Widget",
                      "metadata": {"name": "w"}, "size": 3}
            await cluster.apply(widget)
            live = await cluster.get(ObjectRef.of(widget))
            assert live is not None and live["size"] == 3
            assert [w["metadata"]["name"] for w in
                    await cluster.list(f"{group}/v1", "Widget", "")] == ["w"]
            assert await cluster.delete(ObjectRef.of(widget)) is True
            assert await cluster.delete(ObjectRef.of(widget)) is False
        finally:
            await connection.close()
            kube.run("delete", f"crd/widgets.{group}", "--wait=false")
    asyncio.run(test())

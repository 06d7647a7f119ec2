"""The Kubernetes API as the controller uses it: server-side apply, get, delete, status patches.

A thin typed layer over kubernetes_asyncio's DynamicClient; discovery is refreshed once when a
kind is unknown, since a CRD applied a moment ago is not in the cached discovery yet.
"""
from __future__ import annotations

import asyncio
import copy
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError
from kubernetes_asyncio.dynamic.resource import Resource

from sync_controller.inventory import ObjectRef

FIELD_MANAGER = "plinth"


class KubeError(Exception):
    """An API call failed; the message names the object and carries the server's reason."""

    def __init__(self, ref: ObjectRef | str, status: int, message: str) -> None:
        super().__init__(f"{ref}: {message}")
        self.ref = ref
        self.status = status
        self.reason_message = message


class UnknownKind(KubeError):
    pass


async def _body(ref: ObjectRef | str, response: Any) -> dict[str, Any]:
    """The JSON body of a response, or KubeError for a non-2xx status.

    The DynamicClient reads responses unprocessed (`_preload_content=False`), so an error
    status arrives as a response, not as an exception: it must be checked here.
    """
    try:
        body = await response.json(content_type=None)
    except ValueError:
        body = {}
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        message = body.get("message") if isinstance(body, dict) else None
        raise KubeError(ref, int(response.status), message or str(response.reason))
    return dict(body or {})


async def api_client(kubeconfig: str | None) -> client.ApiClient:
    """From a kubeconfig file, or the in-cluster service account when none is given.

    Sends no request, so the controller can start (and say on /readyz that the API server is
    unreachable) before the server answers."""
    configuration = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    host = urllib.parse.urlsplit(str(configuration.host)).hostname or ""
    proxies = urllib.request.getproxies()
    if not configuration.proxy and proxies.get("https") and \
            not urllib.request.proxy_bypass(host):
        configuration.proxy = proxies["https"]  # as kubectl does: HTTPS_PROXY, NO_PROXY
    api = client.ApiClient(configuration)
    # The client's aiohttp session trusts the environment, so it reads ~/.netrc and the proxy
    # variables in a worker thread for every request: two thread hops per object applied.
    # The proxy is decided once above, and the kubeconfig authenticates, so the session is
    # replaced by one on the same connection pool that does not look again.
    rest = api.rest_client
    trusting = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(
        connector=trusting.connector, trust_env=False,
        read_bufsize=2**21)  # as the client's: a watch event may be as large as etcd allows
    trusting.detach()
    return api


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


class Cluster:
    def __init__(self, api: client.ApiClient, dynamic: DynamicClient) -> None:
        self._refresh = asyncio.Lock()
        self._refreshes = 0
        # (apiVersion, kind) -> Resource, until discovery is refreshed: the discovery cache
        # answers a lookup by searching all its groups, a cost paid per object otherwise
        self._found: dict[tuple[str, str], Resource] = {}
        self.api = api
        self.dynamic = dynamic
        self.user: str | None = None  # impersonated; None: the controller's own identity

    def impersonating(self, user: str | None) -> Cluster:
        """The same connection and discovery, acting as `user` (the API server adds a service
        account's groups): what a tenant's Kustomization applies, it applies with that
        account's rights, not the controller's."""
        if user is None:
            return self
        other = copy.copy(self)
        other.user = user
        return other

    def _headers(self) -> dict[str, str]:
        """Fresh per call: the client adds its own headers to the dict it is given."""
        return {"Impersonate-User": self.user} if self.user else {}

    @classmethod
    async def connect(cls, api: client.ApiClient, cache_dir: Path) -> Cluster:
        """Discovery over `api` (cached in `cache_dir`): the first step that needs the server."""
        cache_dir.mkdir(parents=True, exist_ok=True)
        dynamic = await DynamicClient(api, cache_file=str(cache_dir / "discovery.json"))
        return cls(api, dynamic)

    async def resource(self, api_version: str, kind: str) -> Resource:
        found = self._found.get((api_version, kind))
        if found is not None:
            return found
        seen = self._refreshes
        # Discovery rebuilds its cache in place: a lookup during a refresh reads a half-built
        # cache (KeyError 'apis'), so lookups and refreshes take turns.
        async with self._refresh:
            try:
                found = await self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                if self._refreshes == seen:  # many misses at once (a new CRD's): one refresh
                    await self.dynamic.resources.invalidate_cache()
                    self._refreshes += 1
                    self._found.clear()
            if found is None:
                try:
                    found = await self.dynamic.resources.get(api_version=api_version, kind=kind)
                except ResourceNotFoundError:
                    raise UnknownKind(f"{kind} ({api_version})", 404,
                                      f"the API server does not serve {api_version} {kind}"
                                      ) from None
            self._found[(api_version, kind)] = found
            return found

    async def is_namespaced(self, ref: ObjectRef) -> bool:
        return bool((await self.resource(ref.api_version, ref.kind)).namespaced)

    async def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply as field manager `plinth`, taking over conflicting fields like Flux."""
        ref = ObjectRef.of(obj)
        resource = await self.resource(ref.api_version, ref.kind)
        query = [("fieldValidation", "Strict")]
        return await _body(ref, await self.dynamic.server_side_apply(
            resource, body=obj, name=ref.name, namespace=ref.namespace or None,
            force_conflicts=True, field_manager=FIELD_MANAGER,
            dry_run="All" if dry_run else None, query_params=query, serialize=False,
            header_params=self._headers()))

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        resource = await self.resource(ref.api_version, ref.kind)
        try:
            return await _body(ref, await self.dynamic.get(
                resource, name=ref.name, namespace=ref.namespace or None, serialize=False,
                header_params=self._headers()))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def delete(self, ref: ObjectRef) -> bool:
        """Delete in the background (dependents too); False when it was already gone."""
        resource = await self.resource(ref.api_version, ref.kind)
        try:
            await _body(ref, await self.dynamic.delete(
                resource, name=ref.name, namespace=ref.namespace or None,
                propagation_policy="Background", serialize=False,
                header_params=self._headers()))
            return True
        except KubeError as err:
            if err.status == 404:
                return False
            raise

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        resource = await self.resource(ref.api_version, ref.kind)
        path = resource.path(name=ref.name, namespace=ref.namespace or None) + "/status"
        try:
            await _body(ref, await self.dynamic.request(
                "patch", path, body={"status": status},
                content_type="application/merge-patch+json", serialize=False,
                header_params=self._headers()))
        except KubeError as err:
            if err.status != 404:  # deleted meanwhile: nothing left to report on
                raise

    async def list(self, api_version: str, kind: str, namespace: str,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        resource = await self.resource(api_version, kind)
        body = await _body(f"{kind} list", await self.dynamic.get(
            resource, namespace=namespace, label_selector=label_selector, serialize=False,
            header_params=self._headers()))
        return [dict(item, apiVersion=api_version, kind=kind) for item in body.get("items") or []]

"""The Kubernetes API as the controller uses it: server-side apply, get, list, delete, watch,
status patches.

Requests go over one aiohttp session with the credentials kopf logs in with (one config model
for both: a kubeconfig, or the pod's service account), read and written as plain dicts. No
client library's generated models are loaded: the controller has no use for them, and they
held a third of its memory. Discovery is lazy, one request per API group version when a kind
of it is first used, and asked again once when a kind is unknown, since a CRD applied a moment
ago is not in it yet.
"""
from __future__ import annotations

import asyncio
import copy
import json
import os
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from sync_controller.inventory import ObjectRef

if TYPE_CHECKING:
    import kopf

FIELD_MANAGER = "plinth"
# a watch event may be as large as etcd allows an object to be
_READ_BUFSIZE = 2**21
# a request's bound unless it says otherwise (aiohttp's own default); a hung API server must
# not hang a reconcile for ever
REQUEST_SECONDS = 300.0


class KubeError(Exception):
    """An API call failed; the message names the object and carries the server's reason."""

    def __init__(self, ref: ObjectRef | str, status: int, message: str) -> None:
        super().__init__(f"{ref}: {message}")
        self.ref = ref
        self.status = status
        self.reason_message = message


class UnknownKind(KubeError):
    pass


def login(kubeconfig: str | None, settings: kopf.OperatorSettings | None = None
          ) -> kopf.ConnectionInfo:
    """The controller's credentials, as kopf reads them: from `kubeconfig` (kopf reads the
    KUBECONFIG variable, which is set to it), else from the pod's service account."""
    import kopf
    settings = settings or kopf.OperatorSettings()
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
        info = kopf.login_with_kubeconfig(settings=settings)
    else:
        info = kopf.login_with_service_account(settings=settings)
    if info is None:
        raise RuntimeError("no credentials for the API server: neither a kubeconfig nor a "
                           "service account token")
    return info


class Connection:
    """An aiohttp session to the API server. A 401 logs in again once (a service account's
    token is rotated on disk); the proxy is decided once, as kubectl does (HTTPS_PROXY,
    NO_PROXY), and the session trusts nothing else from the environment."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo]) -> None:
        self._login = login
        info = login()
        self.server = info.server.rstrip("/")
        host = urllib.parse.urlsplit(self.server).hostname or ""
        proxies = urllib.request.getproxies()
        self._proxy = info.proxy_url or (
            proxies.get("https") if not urllib.request.proxy_bypass(host) else None)
        self._session = self._open(info)
        self._relogin = asyncio.Lock()

    @staticmethod
    def _open(info: kopf.ConnectionInfo) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
            headers={**info.as_http_headers(), "User-Agent": "plinth-sync-controller"},
            trust_env=False, read_bufsize=_READ_BUFSIZE)

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      headers: dict[str, str] | None = None, timeout: float | None = None
                      ) -> aiohttp.ClientResponse:
        """The response, its body unread (the caller reads or releases it)."""
        session = self._session
        kwargs: dict[str, Any] = {
            "params": params, "data": None if body is None else json.dumps(body),
            "headers": {**({"Content-Type": content_type} if body is not None else {}),
                        **(headers or {})},
            "proxy": self._proxy,
            "timeout": aiohttp.ClientTimeout(total=timeout or REQUEST_SECONDS)}
        response = await session.request(method, self.server + path, **kwargs)
        if response.status != 401:
            return response
        response.release()
        async with self._relogin:  # many requests refused at once: one login
            if self._session is session:
                self._session = self._open(self._login())
                await session.close()
        return await self._session.request(method, self.server + path, **kwargs)

    async def close(self) -> None:
        await self._session.close()


async def _body(ref: ObjectRef | str, response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The JSON body of a response, or KubeError for a non-2xx status."""
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


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass(frozen=True)
class Resource:
    """A kind as discovery serves it."""
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        base = f"/apis/{self.api_version}" if "/" in self.api_version else \
            f"/api/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{urllib.parse.quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return base + (f"/{urllib.parse.quote(name, safe='')}" if name else "")


class Cluster:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.user: str | None = None  # impersonated; None: the controller's own identity
        self._discovery = _Discovery(connection)

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
        return {"Impersonate-User": self.user} if self.user else {}

    @classmethod
    async def connect(cls, connection: Connection) -> Cluster:
        """The first step that needs the server: fails while it does not answer."""
        await _body("API server", await connection.request("GET", "/api"))
        return cls(connection)

    async def resource(self, api_version: str, kind: str) -> Resource:
        return await self._discovery.find(api_version, kind)

    async def is_namespaced(self, ref: ObjectRef) -> bool:
        return (await self.resource(ref.api_version, ref.kind)).namespaced

    async def _call(self, ref: ObjectRef | str, method: str, path: str,
                    params: dict[str, str] | None = None, body: Any = None,
                    content_type: str = "application/json") -> dict[str, Any]:
        return await _body(ref, await self.connection.request(
            method, path, params=params, body=body, content_type=content_type,
            headers=self._headers()))

    async def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply as field manager `plinth`, taking over conflicting fields like Flux."""
        ref = ObjectRef.of(obj)
        resource = await self.resource(ref.api_version, ref.kind)
        params = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        # JSON is YAML: the apply patch type takes either
        return await self._call(ref, "PATCH", resource.path(ref.name, ref.namespace or None),
                                params, obj, "application/apply-patch+yaml")

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        resource = await self.resource(ref.api_version, ref.kind)
        try:
            return await self._call(ref, "GET", resource.path(ref.name, ref.namespace or None))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def delete(self, ref: ObjectRef) -> bool:
        """Delete in the background (dependents too); False when it was already gone."""
        resource = await self.resource(ref.api_version, ref.kind)
        try:
            await self._call(ref, "DELETE", resource.path(ref.name, ref.namespace or None),
                             {"propagationPolicy": "Background"})
            return True
        except KubeError as err:
            if err.status == 404:
                return False
            raise

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        resource = await self.resource(ref.api_version, ref.kind)
        path = resource.path(ref.name, ref.namespace or None) + "/status"
        try:
            await self._call(ref, "PATCH", path, body={"status": status},
                             content_type="application/merge-patch+json")
        except KubeError as err:
            if err.status != 404:  # deleted meanwhile: nothing left to report on
                raise

    async def list(self, api_version: str, kind: str, namespace: str,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        resource = await self.resource(api_version, kind)
        params = {"labelSelector": label_selector} if label_selector else None
        body = await self._call(f"{kind} list", "GET", resource.path(None, namespace or None),
                                params)
        return [dict(item, apiVersion=api_version, kind=kind) for item in body.get("items") or []]

    async def watch(self, api_version: str, kind: str, namespace: str, label_selector: str,
                    timeout: int, resource_version: str | None = None
                    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) of each event until the server ends the stream after `timeout`
        seconds. Without `resource_version`, the stream starts with an ADDED event for every
        object there is; with it, from the first change after that version. BOOKMARK events
        carry only a newer version to resume from. A version the server no longer has is a
        KubeError with status 410, as is any ERROR event (its status code, or 500)."""
        resource = await self.resource(api_version, kind)
        params = {"watch": "true", "labelSelector": label_selector,
                  "timeoutSeconds": str(timeout), "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        response = await self.connection.request(
            "GET", resource.path(None, namespace or None), params=params,
            headers=self._headers(), timeout=timeout + 30)  # the server ends it first
        if response.status != 200:
            await _body(f"{kind} watch", response)
        try:
            async for line in response.content:
                event = json.loads(line)
                kind_of, obj = str(event.get("type")), event.get("object")
                if not isinstance(obj, dict):
                    raise KubeError(f"{kind} watch", 500, f"a {kind_of} event without an object")
                if kind_of == "ERROR":
                    code = obj.get("code")
                    raise KubeError(f"{kind} watch", code if isinstance(code, int) else 500,
                                    str(obj.get("message") or obj.get("reason") or "ERROR"))
                yield kind_of, obj
        finally:
            response.release()


class _Discovery:
    """Kinds by API group version, each asked for when first used."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self._kinds: dict[str, dict[str, Resource]] = {}  # apiVersion -> kind -> Resource
        self._asked: dict[str, int] = {}  # apiVersion -> times asked

    async def find(self, api_version: str, kind: str) -> Resource:
        found = self._kinds.get(api_version, {}).get(kind)
        if found is not None:
            return found
        seen = self._asked.get(api_version, 0)
        async with self._lock:  # many misses at once (a new CRD's objects): one request
            if self._asked.get(api_version, 0) == seen:
                self._kinds[api_version] = await self._ask(api_version)
                self._asked[api_version] = seen + 1
        found = self._kinds[api_version].get(kind)
        if found is None:
            raise UnknownKind(f"{kind} ({api_version})", 404,
                              f"the API server does not serve {api_version} {kind}")
        return found

    async def _ask(self, api_version: str) -> dict[str, Resource]:
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            body = await _body(api_version, await self._connection.request("GET", path))
        except KubeError as err:
            if err.status == 404:  # no such group version (yet)
                return {}
            raise
        return {r["kind"]: Resource(api_version, r["kind"], r["name"], bool(r["namespaced"]))
                for r in body.get("resources") or [] if "/" not in r["name"]}

"""The registry v2 HTTP API, as far as image automation needs it: list an image's tags
(following pagination) and resolve a tag to its manifest digest.

Auth follows the distribution spec: try anonymously; on a 401 answer the challenge, Basic
with the credentials, or Bearer by fetching a token from the realm (with the credentials, if
any) for the requested scope. Credentials never appear in errors.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
MAX_PAGES = 1000


class RegistryError(Exception):
    """The registry refused or failed; the message is safe to show in a status."""


@dataclass(frozen=True)
class ImageName:
    host: str
    repository: str

    @classmethod
    def parse(cls, image: str) -> ImageName:
        first, _, rest = image.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest)
        path = image if "/" in image else f"library/{image}"
        return cls("registry-1.docker.io", path)

    def base_url(self, insecure: bool) -> str:
        local = self.host.split(":")[0] in ("127.0.0.1", "localhost")
        return f"{'http' if insecure or local else 'https'}://{self.host}"


@dataclass(frozen=True)
class Login:
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_dockerconfigjson(cls, text: str, host: str) -> Login:
        auths = (json.loads(text).get("auths") or {})
        entry = auths.get(host) or auths.get(f"https://{host}") or {}
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return cls(user, password)
        return cls(entry.get("username"), entry.get("password"))

    def basic(self) -> str | None:
        if not self.username:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class RegistryClient:
    def __init__(self, session: aiohttp.ClientSession, image: ImageName, login: Login,
                 insecure: bool = False, timeout: float = 30.0) -> None:
        self.session, self.image, self.login = session, image, login
        self.base = image.base_url(insecure)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._authorization: str | None = None

    async def tags(self) -> list[str]:
        url: str | None = f"{self.base}/v2/{self.image.repository}/tags/list?n=100"
        tags: list[str] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return tags
            body, headers = await self._get_json(url)
            tags.extend(body.get("tags") or [])
            url = self._next(headers.get("Link"))
        raise RegistryError(f"{self.image.host}/{self.image.repository}: more than "
                            f"{MAX_PAGES} pages of tags")

    async def digest(self, tag: str) -> str:
        url = f"{self.base}/v2/{self.image.repository}/manifests/{tag}"
        status, headers, _ = await self._request("HEAD", url, {"Accept": MANIFEST_TYPES})
        if status == 404:
            raise RegistryError(f"{self.image.host}/{self.image.repository}:{tag} not found")
        digest = headers.get("Docker-Content-Digest")
        if status != 200 or not digest:
            raise RegistryError(f"{self.image.host}/{self.image.repository}:{tag}: "
                                f"HTTP {status} without a digest")
        return digest

    def _next(self, link: str | None) -> str | None:
        match = re.search(r'<([^>]+)>\s*;\s*rel="next"', link or "")
        return urljoin(self.base, match.group(1)) if match else None

    async def _get_json(self, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        status, headers, body = await self._request("GET", url, {"Accept": "application/json"})
        if status == 404:
            raise RegistryError(f"{self.image.host}/{self.image.repository}: repository not "
                                "found")
        if status != 200:
            raise RegistryError(f"{self.image.host}/{self.image.repository}: HTTP {status}")
        return dict(json.loads(body or b"{}")), headers

    async def _request(self, method: str, url: str, headers: dict[str, str]
                       ) -> tuple[int, dict[str, str], bytes]:
        """One request; a 401 is answered (a first login, or an expired token) and retried once."""
        status, answer, body = await self._send(method, url, headers)
        if status == 401:
            self._authorization = await self._answer(answer.get("WWW-Authenticate", ""))
            status, answer, body = await self._send(method, url, headers)
        if status == 401:
            raise RegistryError(f"{self.image.host}/{self.image.repository}: unauthorized "
                                "(check the credentials in spec.secretRef)")
        return status, answer, body

    async def _send(self, method: str, url: str, headers: dict[str, str]
                    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers)
        if self._authorization:
            sent["Authorization"] = self._authorization
        try:
            async with self.session.request(method, url, headers=sent,
                                            timeout=self.timeout) as response:
                return response.status, dict(response.headers), await response.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RegistryError(f"{self.image.host}: {type(err).__name__}: {err}") from None

    async def _answer(self, challenge: str) -> str:
        scheme, params = _challenge(challenge)
        if scheme == "basic":
            basic = self.login.basic()
            if basic is None:
                raise RegistryError(f"{self.image.host}: needs credentials (spec.secretRef)")
            return basic
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{self.image.host}: unsupported auth challenge {scheme!r}")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.image.repository}:pull")
        headers = {"Authorization": b} if (b := self.login.basic()) else {}
        try:
            async with self.session.get(f"{params['realm']}?{urlencode(query)}",
                                        headers=headers, timeout=self.timeout) as response:
                if response.status != 200:
                    raise RegistryError(f"{self.image.host}: token service answered HTTP "
                                        f"{response.status} (check spec.secretRef)")
                token = (await response.json(content_type=None))
        except aiohttp.ClientError as err:
            raise RegistryError(f"{self.image.host}: token service: {err}") from None
        value = token.get("token") or token.get("access_token")
        if not value:
            raise RegistryError(f"{self.image.host}: token service gave no token")
        return f"Bearer {value}"

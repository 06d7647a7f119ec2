"""Push an image to a registry v2 (Docker distribution API): blobs the registry lacks, then the
manifest under a tag. Basic auth, or the Bearer token a registry's challenge asks for.

Credentials go only into Authorization headers: never into a URL, a log line or an error.
"""
from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from plinth.oci.image import MANIFEST_TYPE, Image

_TIMEOUT = 60


class RegistryError(Exception):
    """The registry refused or failed a request; the message names the request, not secrets."""


@dataclass
class Registry:
    """One repository of one registry, e.g. host `10.244.0.1:5000`, repository `plinth/web`."""

    host: str
    repository: str
    username: str | None = None
    password: str | None = None
    insecure: bool = False  # plain HTTP (a local registry)
    _authorization: str | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}/v2/{self.repository}"

    def push(self, image: Image, tag: str) -> str:
        """Upload what is missing, tag the manifest; returns the digest the registry reports."""
        blobs: list[tuple[str, Path | bytes]] = [(layer.digest, layer.path)
                                                  for layer in image.layers]
        for digest, source in [*blobs, (image.config_digest, image.config)]:
            if not self._has_blob(digest):
                self._upload(digest, source)
        status, headers, _ = self._request(
            "PUT", f"{self.base}/manifests/{tag}", image.manifest,
            {"Content-Type": MANIFEST_TYPE})
        if status != 201:
            raise RegistryError(f"PUT manifest {self.repository}:{tag}: HTTP {status}")
        return headers.get("Docker-Content-Digest", image.digest)

    def digest(self, tag: str) -> str | None:
        """The digest of `tag`, or None when the registry has no such tag."""
        try:
            _, headers, _ = self._request("HEAD", f"{self.base}/manifests/{tag}", None,
                                          {"Accept": MANIFEST_TYPE})
        except RegistryError as err:
            if "HTTP 404" in str(err):
                return None
            raise
        return headers.get("Docker-Content-Digest")

    def _has_blob(self, digest: str) -> bool:
        try:
            self._request("HEAD", f"{self.base}/blobs/{digest}", None, {})
        except RegistryError as err:
            if "HTTP 404" in str(err):
                return False
            raise
        return True

    def _upload(self, digest: str, source: Path | bytes) -> None:
        _, headers, _ = self._request("POST", f"{self.base}/blobs/uploads/", b"", {})
        location = urllib.parse.urljoin(self.base, headers["Location"])
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={urllib.parse.quote(digest)}"
        size = source.stat().st_size if isinstance(source, Path) else len(source)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if isinstance(source, Path):
            with open(source, "rb") as body:
                status, _, _ = self._request("PUT", url, body, headers)
        else:
            status, _, _ = self._request("PUT", url, source, headers)
        if status != 201:
            raise RegistryError(f"upload of {digest} to {self.repository}: HTTP {status}")

    def _request(self, method: str, url: str, body: object, headers: dict[str, str]
                 ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            request = urllib.request.Request(
                url, data=body, method=method, headers=dict(headers))  # type: ignore[arg-type]
            if self._authorization:
                request.add_header("Authorization", self._authorization)
            try:
                with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                    return response.status, dict(response.headers), response.read()
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0 and self._login(
                        err.headers.get("WWW-Authenticate", "")):
                    if hasattr(body, "seek"):
                        body.seek(0)
                    continue
                path = urllib.parse.urlsplit(url).path
                hint = " (check the registry credentials)" if err.code in (401, 403) else ""
                raise RegistryError(f"{method} {self.host}{path}: HTTP {err.code}{hint}") from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise RegistryError(f"{method} {self.host}: {reason}") from None
        raise RegistryError(f"{method} {self.host}: still unauthorized after login")

    def _login(self, challenge: str) -> bool:
        """Answer a Basic or Bearer challenge; False when there is nothing to answer with."""
        if self.username is None or self.password is None:
            return False
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            self._authorization = f"Basic {basic}"
            return True
        if scheme.lower() != "bearer":
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = {"service": fields.get("service", ""),
                 "scope": fields.get("scope", f"repository:{self.repository}:pull,push")}
        request = urllib.request.Request(f"{fields['realm']}?{urllib.parse.urlencode(query)}",
                                         headers={"Authorization": f"Basic {basic}"})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                doc = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise RegistryError(f"token for {self.host}/{self.repository}: "
                                f"{getattr(err, 'code', None) or getattr(err, 'reason', err)}"
                                ) from None
        self._authorization = f"Bearer {doc.get('token') or doc['access_token']}"
        return True

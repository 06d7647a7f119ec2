"""HTTP to a forge's REST API: JSON in and out, token in a header, errors as `ForgeError`.

The token goes only into the `Authorization` header of each request; it is never part of a URL,
and every message built here is scrubbed of it anyway, so a `ForgeError` can go to a log, a
Kubernetes Event or a commit status as it is.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ForgeKind = Literal["gitea", "github"]
JSON = Any  # what json.loads returns; models.py turns it into typed objects at once
Query = Mapping[str, str | int]


def forge_kind(value: str) -> ForgeKind:
    """A kind read from config or a custom resource, checked: `gitea` or `github`."""
    if value == "gitea":
        return "gitea"
    if value == "github":
        return "github"
    raise ValueError(f"forge kind must be gitea or github, not {value!r}")


class ForgeError(Exception):
    """A forge call failed: which call, the HTTP status (None: no answer) and the forge's words."""

    def __init__(self, call: str, status: int | None, message: str) -> None:
        answer = f"answered {status}" if status is not None else "did not answer"
        super().__init__(f"{call} {answer}: {message}")
        self.call = call
        self.status = status
        self.message = message


def never_transient(status: int, message: str) -> bool:
    return False


@dataclass(frozen=True)
class Transport:
    """One forge API root (`api_url`) and its token.

    `settle_timeout` bounds how long a call that declares an answer transient (Gitea processes
    pushes asynchronously, see `ForgeClient`) polls before that answer becomes a `ForgeError`.
    """

    kind: ForgeKind
    api_url: str
    token: str = field(repr=False)
    timeout: float = 10.0
    settle_timeout: float = 20.0

    def call(self, method: str, path: str, body: JSON = None, *, query: Query | None = None,
             transient: Callable[[int, str], bool] = never_transient,
             missing_ok: bool = False) -> JSON:
        """The decoded JSON answer (None for an empty one, or for 404 with `missing_ok`)."""
        name = f"{self.kind} {method} {path}"
        deadline = time.monotonic() + self.settle_timeout
        pause = 0.1
        while True:
            try:
                return self._once(method, path, body, query)
            except urllib.error.HTTPError as err:
                status, message = err.code, self._scrub(_error_message(err))
                if status == 404 and missing_ok:
                    return None
                if not transient(status, message) or time.monotonic() + pause > deadline:
                    raise ForgeError(name, status, message) from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise ForgeError(name, None, self._scrub(str(reason))) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def pages(self, path: str, query: Query | None = None, *, max_pages: int = 20,
              transient: Callable[[int, str], bool] = never_transient) -> Iterator[JSON]:
        """Every item of a paginated list: Gitea pages by `limit` (at most 50), GitHub by
        `per_page` (at most 100). Bounded, so a runaway list cannot hold a caller forever."""
        size_key, size = ("limit", 50) if self.kind == "gitea" else ("per_page", 100)
        for page in range(1, max_pages + 1):
            items = self.call("GET", path, query={**(query or {}), size_key: size, "page": page},
                              transient=transient)
            yield from items or []
            if not items or len(items) < size:
                return

    def _once(self, method: str, path: str, body: JSON, query: Query | None) -> JSON:
        # a branch may hold characters that mean something in a URL (`#`, `?`, `%`)
        url = self.api_url.rstrip("/") + urllib.parse.quote(path, safe="/:@!$&'()*+,;=")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers())
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json",
                   "User-Agent": "plinth"}
        if self.kind == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
            headers["Authorization"] = f"Bearer {self.token}"
        else:
            headers["Authorization"] = f"token {self.token}"
        return headers

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _error_message(err: urllib.error.HTTPError) -> str:
    """The forge's own words: `message` (+ GitHub's `errors`), else the start of the body."""
    try:
        raw = err.read().decode(errors="replace")
    except OSError:
        raw = ""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.strip()[:300] or str(err.reason)
    if not isinstance(payload, dict):
        return raw.strip()[:300]
    message = str(payload.get("message") or err.reason)
    details = [str(e.get("message") or e.get("code")) for e in payload.get("errors") or []
               if isinstance(e, dict) and (e.get("message") or e.get("code"))]
    return f"{message} ({'; '.join(details)})" if details else message

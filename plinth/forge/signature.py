"""Webhook signatures as GitHub and Gitea send them: `X-Hub-Signature-256: sha256=<hex>`, the
HMAC-SHA256 of the raw request body under the hook's secret; and the path of a Plinth Receiver,
which whoever registers the hook (Pulumi, a pipeline) computes as the controller does."""
from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(secret: str, body: bytes) -> str:
    """The header value a forge sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True only for a well-formed header whose HMAC matches, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def receiver_path(token: str, namespace: str, name: str) -> str:
    """Where the controller serves Receiver `namespace/name`: unguessable without the token,
    and new when the token changes."""
    return "/hook/" + hashlib.sha256(f"{token}{name}{namespace}".encode()).hexdigest()

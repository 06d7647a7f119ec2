"""A kubelet image credential provider for the local node: pods pull from the stack's registry
with no pull Secret in their namespace, as EKS nodes pull from ECR with their instance role.

kubelet runs `python -m plinth.localenv.registry_login LOGINS_FILE` for each pull of a matching
image, with a CredentialProviderRequest on stdin, and reads a CredentialProviderResponse from
stdout. The logins file (mode 0600, in the node's state) maps registry hosts to credentials;
a registry added after the node started is found at its first pull.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

API_VERSION = "credentialprovider.kubelet.k8s.io/v1"


def add_login(logins: Path, host: str, username: str, password: str) -> None:
    known = json.loads(logins.read_text()) if logins.exists() else {}
    known[host] = {"username": username, "password": password}
    logins.parent.mkdir(parents=True, exist_ok=True)
    logins.touch(mode=0o600)
    logins.write_text(json.dumps(known))


def hosts(logins: Path) -> list[str]:
    """The registries (host:port) with a login: kubelet's `matchImages` (a port must match)."""
    return sorted(json.loads(logins.read_text())) if logins.exists() else []


def response(request: dict[str, object], logins: dict[str, dict[str, str]]) -> dict[str, object]:
    """Credentials for the request's image host, if it is one of ours (none otherwise)."""
    image = str(request.get("image", ""))
    host = image.split("/", 1)[0] if "/" in image else ""
    auth = {host: logins[host]} if host in logins else {}
    return {"apiVersion": API_VERSION, "kind": "CredentialProviderResponse",
            "cacheKeyType": "Registry", "cacheDuration": "5m", "auth": auth}


def main() -> None:
    logins_file = Path(sys.argv[1])
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    json.dump(response(json.load(sys.stdin), logins), sys.stdout)


if __name__ == "__main__":
    main()

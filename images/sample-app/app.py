"""The sample app of the local stack: an HTTP server that says which app and version it is.

Stdlib only, so its image is the Python base layer plus this file. `APP_VERSION` is baked into
each image's config by the build, so every tag is its own image and a rollout is visible from
outside (GET / answers the version that runs). `APP_NAME` and `PORT` come from the pod.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

NAME = os.environ.get("APP_NAME", "web")
VERSION = os.environ.get("APP_VERSION", "dev")


class Handler(BaseHTTPRequestHandler):
    server_version = f"plinth-sample-app/{VERSION}"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain")
        elif self.path in ("/", "/version"):
            body = json.dumps({"app": NAME, "version": VERSION}).encode() + b"\n"
            self._send(HTTPStatus.OK, body, "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App-Version", VERSION)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """One line per request on stdout (kubectl logs), not stderr."""
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        print("stopping", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"{NAME} {VERSION} listening on :{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

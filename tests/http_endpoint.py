"""A small HTTP server on loopback for tests: serves files and records what it is sent.

The ``http_endpoint`` fixture (import ``http_endpoint_fixture``) yields an :class:`Endpoint`; ``endpoint.serve("/a.csv",
b"...")`` makes ``GET /a.csv`` answer those bytes, every other GET answers 404, and
every PUT or POST is recorded in ``endpoint.received`` and answered 200.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    received: list[Request] = field(default_factory=list)

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size)
            endpoint.received.append(Request(self.command, self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = _record  # noqa: N815

        def do_GET(self) -> None:
            endpoint.received.append(Request("GET", self.path, dict(self.headers), b""))
            body = endpoint.files.get(self.path.partition("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(name="http_endpoint")
def http_endpoint_fixture() -> Iterator[Endpoint]:
    endpoint = Endpoint(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

"""HostileServer: a FAKE, deliberately hostile HTTP server on 127.0.0.1 standing in for a
job callback URL that someone who can create a Girder job (or publish a message) controls.

The real Girder cannot be made to do these things, so a fake is allowed here. Modes:

* ``"redirect"``: answers every request with ``307`` to ``target`` (another port:
  another origin), so a client that follows redirects carries its headers there;
* ``"hang"``: accepts the connection, reads the request and never answers;
* ``"huge"``: answers 200 with a body of ``huge_bytes`` (400 MB by default), written
  as long as the client reads; ``sent`` counts what it managed to write;
* ``"deep"``: answers 200 with a small JSON body nested too deep for Python's decoder
  (which raises RecursionError, not ValueError);
* ``"record"``: answers ``{}`` with 200 (the redirect's target).

Every request's method, path and ``Girder-Token`` header land in ``requests``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Seen:
    method: str
    path: str
    token: str | None
    headers: dict[str, str]


class HostileServer:
    def __init__(self, mode: str, target: str = "", huge_bytes: int = 400 * 1024 * 1024) -> None:
        self.mode = mode
        self.target = target
        self.huge_bytes = huge_bytes
        self.requests: list[Seen] = []
        self.sent = 0
        self.in_flight = 0  # requests being held unanswered ("hang")
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append(Seen(self.command, self.path, self.headers.get("Girder-Token"),
                                            dict(self.headers)))  # fmt: skip
                server._answer(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any  # noqa: N815

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def spec(self, job_id: str = "0123456789abcdef01234567", token: str = "") -> dict[str, Any]:
        """A jobInfoSpec whose callback URL is this server."""
        return {"method": "PUT", "url": f"{self.url}/api/v1/job/{job_id}", "reference": job_id,
                "headers": {"Girder-Token": token}, "logPrint": True}  # fmt: skip

    def tokens(self) -> list[str | None]:
        return [r.token for r in self.requests]

    def _answer(self, http: BaseHTTPRequestHandler) -> None:
        if self.mode == "redirect":
            http.send_response(307)
            http.send_header("Location", f"{self.target}{http.path}")
            http.send_header("Content-Length", "0")
            http.end_headers()
        elif self.mode == "hang":
            self.in_flight += 1
            self.release.wait()
            self.in_flight -= 1
        elif self.mode == "huge":
            http.send_response(200)
            http.send_header("Content-Type", "application/json")
            http.send_header("Connection", "close")
            http.end_headers()
            chunk = b" " * (1024 * 1024)
            try:
                while self.sent < self.huge_bytes:
                    http.wfile.write(chunk)
                    self.sent += len(chunk)
            except OSError:
                pass  # the client stopped reading: what it should do
        else:
            body = b"[" * 100_000 + b"]" * 100_000 if self.mode == "deep" else json.dumps({}).encode()
            http.send_response(200)
            http.send_header("Content-Type", "application/json")
            http.send_header("Content-Length", str(len(body)))
            http.end_headers()
            http.wfile.write(body)

    def stop(self) -> None:
        self.release.set()
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(name="hostile")
def hostile_fixture() -> Iterator[Callable[..., HostileServer]]:
    """``hostile(mode, **kwargs)``: a :class:`HostileServer`; every one is stopped after the test."""
    made: list[HostileServer] = []

    def make(mode: str, **kwargs: Any) -> HostileServer:
        server = HostileServer(mode, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()

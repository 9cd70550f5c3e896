"""FakeGirder: a tiny local HTTP server that stands in for Girder's job endpoint.

It exists for what the real Girder cannot be made to do on demand: answer 503 to
exactly the next N requests, refuse connections and come back on the same port,
or record the precise order and timing of every request. Its job follows the
transition table of girder-plugin-worker's ``worker_handler`` jobs (400 on an
invalid transition, as Girder answers); everything else about the protocol is
tested against the real Girder in tests/integration.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from girder_worker_utils import JobStatus

TOKEN = "job-token-that-must-never-be-logged"


@dataclass
class Request:
    method: str
    path: str
    form: dict[str, str]
    token: str | None
    at: float = field(default_factory=time.monotonic)


class FakeGirder:
    """``FakeGirder(status=JobStatus.QUEUED)``; ``spec`` is a jobInfoSpec for its job."""

    def __init__(self, status: int = JobStatus.QUEUED, handler: str = "worker_handler") -> None:
        self.status = int(status)
        self.handler = handler
        self.log: list[str] = []
        self.progress: dict[str, str] = {}
        self.requests: list[Request] = []
        self.fail_next = 0
        self.fail_code = 503
        self.delay = 0.0  # seconds to wait before each answer
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/job/abc123"

    @property
    def spec(self) -> dict[str, Any]:
        return {"method": "PUT", "url": self.url, "reference": "abc123", "headers": {"Girder-Token": TOKEN}}

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        time.sleep(self.delay)
        length = int(http.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(http.rfile.read(length).decode(), keep_blank_values=True))
        with self.lock:
            self.requests.append(Request(method, http.path, form, http.headers.get("Girder-Token")))
            code, body = self._answer(method, form, http.headers.get("Girder-Token"))
        payload = json.dumps(body).encode()
        http.send_response(code)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        http.wfile.write(payload)

    def _answer(self, method: str, form: dict[str, str], token: str | None) -> tuple[int, Any]:
        if self.fail_next:
            self.fail_next -= 1
            return self.fail_code, {"message": "fake failure", "type": "internal"}
        if token != TOKEN:
            return 401, {"message": "You must be logged in or have a valid auth token.", "type": "access"}
        if method == "PUT":
            if "status" in form:
                target = int(form["status"])
                if not JobStatus.can_transition(self.status, target, self.handler):
                    message = f"Invalid state transition to '{target}', Current state is '{self.status}'."
                    return 400, {"field": "status", "message": message, "type": "validation"}
                self.status = target
            if "log" in form:
                self.log = [form["log"]] if form.get("overwrite") == "true" else [*self.log, form["log"]]
            self.progress.update({k: v for k, v in form.items() if k.startswith("progress")})
        return 200, {"_id": "abc123", "status": self.status, "handler": self.handler}

    # -- what the tests read ----------------------------------------------------

    def statuses(self) -> list[int]:
        return [int(r.form["status"]) for r in self.requests if "status" in r.form]

    def log_text(self) -> str:
        return "".join(self.log)

    def log_puts(self) -> list[Request]:
        return [r for r in self.requests if "log" in r.form or any(k.startswith("progress") for k in r.form)]

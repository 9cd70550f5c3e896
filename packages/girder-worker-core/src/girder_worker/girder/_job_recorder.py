"""A stand-in for Girder's job endpoint that records what a worker reports.

:mod:`girder_worker.testing` sends each task with a ``jobInfoSpec`` that points
here, so a plugin's tests can read the status, log and progress its task reported
exactly as Girder would receive them, with no Girder server.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from girder_worker_utils import JobStatus

__all__ = ["JobRecord", "JobRecorder", "Progress"]


@dataclass(frozen=True)
class Progress:
    """One progress report: ``current`` of ``total``, with a message."""

    current: float | None
    total: float | None
    message: str | None


@dataclass
class JobRecord:
    """Everything one task run reported to its job, in the order it arrived.

    ``progress`` has the reports the job received; a worker sends the latest
    values at most every ``GIRDER_WORKER_REPORT_INTERVAL`` seconds, so values a
    task replaced quickly may be missing, but the last one is always there.
    """

    statuses: list[JobStatus] = field(default_factory=list)
    progress: list[Progress] = field(default_factory=list)
    log: str = ""

    @property
    def status(self) -> JobStatus | None:
        """The latest status, or None before the first."""
        return self.statuses[-1] if self.statuses else None

    @property
    def finished(self) -> bool:
        """Whether the run reported a final status (SUCCESS, ERROR or CANCELED)."""
        return self.status in (JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED)

    def copy(self) -> JobRecord:
        return JobRecord(list(self.statuses), list(self.progress), self.log)


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


class JobRecorder:
    """An HTTP server on 127.0.0.1 that records job reports; see the module docstring."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self._jobs: dict[str, JobRecord] = {}
        self._progress: dict[str, dict[str, str]] = {}
        self._changed = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder._handle(self, "GET")

            def do_PUT(self) -> None:
                recorder._handle(self, "PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="job-recorder", daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def job_info_spec(self, job_id: str) -> dict[str, Any]:
        """The ``jobInfoSpec`` header that makes a worker report job ``job_id`` here."""
        return {
            "method": "PUT",
            "url": f"{self.api_url}/job/{job_id}",
            "reference": job_id,
            "headers": {"Girder-Token": self.token},
            "logPrint": True,
        }

    def record(self, job_id: str) -> JobRecord:
        """A copy of what job ``job_id`` received so far."""
        with self._changed:
            return self._jobs.get(job_id, JobRecord()).copy()

    def wait(self, job_id: str, until: Callable[[JobRecord], object], timeout: float) -> JobRecord:
        """Wait until ``until(record)`` is true; raise TimeoutError with the record if not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                record = self._jobs.get(job_id, JobRecord()).copy()
                if until(record):
                    return record
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id} did not get there in {timeout:g} s; it has {record}")
                self._changed.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(http.rfile.read(length).decode(), keep_blank_values=True))
        job_id = urllib.parse.urlsplit(http.path).path.rstrip("/").rpartition("/")[2]
        if http.headers.get("Girder-Token") != self.token:
            code, body = 401, {"message": "You must be logged in or have a valid auth token.", "type": "access"}
        else:
            code, body = 200, self._update(job_id, form if method == "PUT" else {})
        payload = json.dumps(body).encode()
        http.send_response(code)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        http.wfile.write(payload)

    def _update(self, job_id: str, form: dict[str, str]) -> dict[str, Any]:
        with self._changed:
            job = self._jobs.setdefault(job_id, JobRecord())
            if "log" in form:
                job.log = form["log"] if form.get("overwrite") == "true" else job.log + form["log"]
            fields = {k: v for k, v in form.items() if k.startswith("progress")}
            if fields:
                # Girder keeps the fields an update leaves out.
                latest = self._progress.setdefault(job_id, {})
                latest.update(fields)
                job.progress.append(
                    Progress(
                        _number(latest.get("progressCurrent")),
                        _number(latest.get("progressTotal")),
                        latest.get("progressMessage"),
                    )
                )
            if "status" in form:
                job.statuses.append(JobStatus(int(form["status"])))
            self._changed.notify_all()
            status = job.status if job.status is not None else JobStatus.QUEUED
            return {"_id": job_id, "status": int(status), "handler": "celery_handler"}

"""One Girder job's reports, and the REST calls that deliver them.

A :class:`JobChannel` is what a task's ``self.job_manager`` is: the task records
log, progress and status in it without waiting, and the reporter's sender thread
calls :meth:`JobChannel.pump` to send them as the contract of girder-jobs wants:
form-encoded ``PUT``\\ s to the job's ``jobInfoSpec.url`` with its ``Girder-Token``,
log and progress together at most once per interval, the whole log before each
status change, each status in a request of its own.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from girder_worker_utils import JobStatus

from ..monitoring import _metrics
from ..monitoring._log_filter import redact, safe_text
from ._logbuf import LogBuffer
from ._rest import GirderUnavailable, Http, JobSpec, ReportSettings, origin_of, shown_url

__all__ = ["JobChannel"]

logger = logging.getLogger("girder_worker.girder")

_GONE_CODES = (401, 403, 404)
_MAX_RESOLUTIONS = 5


class _Reporter(Protocol):
    def wake(self, channel: JobChannel, when: float) -> None: ...
    def http(self) -> Http: ...


def _status_of(value: Any) -> JobStatus | None:
    try:
        return JobStatus(int(value))
    except (TypeError, ValueError):
        return None


class JobChannel:
    """Everything one run has to tell its Girder job, until Girder has it.

    Task threads call :meth:`write`, :meth:`updateProgress`, :meth:`updateStatus`
    and :meth:`finish`; none of them does network I/O. The reporter calls
    :meth:`pump` (holding :attr:`send_lock`) to send what is due.
    """

    def __init__(self, spec: JobSpec, settings: ReportSettings, reporter: _Reporter) -> None:
        self.spec = spec
        self.origin = origin_of(spec.url)
        self.settings = settings
        #: Values masked in the job's log: its own token, and those its run was given.
        self.secrets: tuple[str, ...] = (spec.token,) if spec.token else ()
        self._reporter = reporter
        self.log = LogBuffer(settings.log_limit)
        self.send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._progress: dict[str, str] = {}
        self._progress_version = 0
        self._progress_sent = 0
        self._statuses: deque[JobStatus] = deque()  # queued by the task
        self._ready: deque[JobStatus] = deque()  # to send: what was written before them has been sent
        self.final: JobStatus | None = None
        self.closing = False
        self._urgent = False
        self.last_put = time.monotonic()
        self.done = False
        self.cancelled_in_girder = False
        self.on_cancel: Callable[[], None] | None = None
        self.failing_since: float | None = None
        self.scheduled_at = float("inf")
        self.requests_sent = 0
        self._warned: set[str] = set()
        self._bytes_decoder: codecs.IncrementalDecoder | None = None

    def __repr__(self) -> str:
        return f"<JobChannel job {self.spec.job_id}>"

    # -- the task's side (no network I/O) ---------------------------------------

    def write(self, message: str | bytes, forceFlush: bool = False) -> None:  # noqa: N803
        """Append ``message`` to the job's log; bytes are read as UTF-8 (a character
        split between two writes is kept whole)."""
        if isinstance(message, bytes | bytearray):
            if self._bytes_decoder is None:
                self._bytes_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            message = self._bytes_decoder.decode(bytes(message))
        if self.log.write(redact(str(message), self.secrets)) or forceFlush:
            self._wake(urgent=forceFlush)

    def write_output(self, text: str) -> None:
        """What the task printed or logged (the capture's fast path of :meth:`write`)."""
        if self.log.write(redact(text, self.secrets)):
            self._reporter.wake(self, self.last_put + self.settings.interval)

    def updateProgress(  # noqa: N802
        self,
        total: float | None = None,
        current: float | None = None,
        message: str | None = None,
        forceFlush: bool = False,  # noqa: N803
    ) -> None:
        """Set the job's progress; ``None`` leaves a field as it was."""
        fields = {"progressTotal": total, "progressCurrent": current, "progressMessage": message}
        with self._lock:
            idle = self._progress_version == self._progress_sent
            for key, value in fields.items():
                if value is not None:
                    self._progress[key] = str(value)
            self._progress_version += 1
        if idle or forceFlush:
            self._wake(urgent=forceFlush)

    def updateStatus(self, status: int) -> None:  # noqa: N802
        """Move the job to ``status`` once the log and progress written so far are sent.

        A final status (SUCCESS, say) waits for the end of the run: all of the log goes first.
        """
        self._queue_status(JobStatus(status))
        self._wake(urgent=True)

    def refreshStatus(self) -> int | None:  # noqa: N802
        """Ask Girder for the job's status: a network round trip. None if it does not say."""
        try:
            code, body = self._call(self._reporter.http(), None, method="GET")
        except GirderUnavailable:
            return None
        status = body.get("status") if code == 200 and isinstance(body, dict) else None
        return status if isinstance(status, int) else None

    def flush(self) -> None:
        """Send what is waiting as soon as the sender can."""
        self._wake(urgent=True)

    def finish(self, status: JobStatus) -> None:
        """The run ended: send all of the log, then ``status``, then forget the job."""
        with self._lock:
            if self.final is not None:
                return
            # Queued before ``final`` is set: a sender that sees ``final`` sees the status too.
            if not self._statuses or self._statuses[-1] != status:
                self._statuses.append(status)
            self.final = status
        self._wake(urgent=True)

    def close(self) -> None:
        """The run ended without a final status (a retry, say): send the log and forget."""
        self.closing = True
        self._wake(urgent=True)

    def _queue_status(self, status: JobStatus) -> None:
        with self._lock:
            if not self._statuses or self._statuses[-1] != status:
                self._statuses.append(status)

    def _wake(self, urgent: bool) -> None:
        if urgent:
            self._urgent = True
        self._reporter.wake(self, time.monotonic() if urgent else self.last_put + self.settings.interval)

    # -- the sender's side -------------------------------------------------------

    def pump(self, http: Http, timeout: Any = None) -> float | None:
        """Send what is due; return when to be called again, or None when idle.

        Raises :class:`GirderUnavailable` with nothing lost: what was not
        delivered is sent again by the next call.
        """
        timeout = timeout or self.settings.timeout
        urgent = self.final is not None or self.closing or self._urgent or bool(self._statuses or self._ready)
        due = self.last_put + self.settings.interval
        if not urgent and time.monotonic() < due:
            return due
        self._urgent = False
        # Statuses a failed pump left: the log and progress written before them went already.
        self._send_statuses(http, timeout)
        covered, ending, flushed = 0, False, False
        while not self.done:
            # Read before the log is looked at: once it has nothing left, everything
            # written before these statuses were queued has been sent.
            with self._lock:
                covered = len(self._statuses)
                ending = self.final is not None or self.closing
            entry = self.log.stage(final=ending)
            with self._lock:
                version = self._progress_version
                progress = dict(self._progress) if version != self._progress_sent else None
            if entry is None and progress is None:
                flushed = True
                break
            data = dict(progress or {})
            if entry is not None:
                data["log"] = entry.text
                if entry.overwrite:
                    data["overwrite"] = "true"
            code, body = self._call(http, data, timeout)
            if code == 200:
                self.last_put = time.monotonic()
                self._watch_for_cancel(body)
            elif not self._gone(code, body):
                self._warn_once("update", "Girder rejected an update of job %s (HTTP %s: %s); dropped", code,
                                safe_text(body, 500))  # fmt: skip
            self.log.commit()
            with self._lock:
                self._progress_sent = version
            if not urgent:
                break
        if self.done:
            return None
        if flushed and covered:
            with self._lock:
                for _ in range(covered):
                    if self._statuses[0].is_final and not ending:
                        break  # a final status waits for the final flush, at finish() or close()
                    self._ready.append(self._statuses.popleft())
            self._send_statuses(http, timeout)
            if self.done:
                return None
        if self._statuses and (not self._statuses[0].is_final or self.final is not None or self.closing):
            # Queued while this pump sent: their log and progress go first, at once.
            return time.monotonic()
        if flushed and ending and (self.final is not None or not self.log.has_output()):
            self.done = True
            return None
        if self.log.sendable() or self._progress_version != self._progress_sent:
            return self.last_put + self.settings.interval
        return None

    def _call(
        self, http: Http, data: Mapping[str, str] | None, timeout: Any = None, method: str | None = None
    ) -> tuple[int, Any]:
        self.requests_sent += 1
        return http.call(
            method or self.spec.method, self.spec.url, self.spec.headers, data, timeout or self.settings.timeout
        )

    def _send_statuses(self, http: Http, timeout: Any) -> None:
        resolutions = 0
        while self._ready and not self.done:
            target = self._ready[0]
            code, body = self._call(http, {"status": str(int(target))}, timeout)
            if code == 200:
                self._ready.popleft()
            elif code == 400 and isinstance(body, dict) and body.get("field") == "status":
                resolutions += 1
                if resolutions > _MAX_RESOLUTIONS:
                    self._ready.popleft()
                else:
                    self._resolve(http, target, timeout)
            elif not self._gone(code, body):
                self._warn_once("status", "job %s: Girder rejected status %s (HTTP %s)", target.name, code)
                self._ready.popleft()

    def _resolve(self, http: Http, target: JobStatus, timeout: Any) -> None:
        """Girder refused ``target`` as a transition: find out why and do what fits."""
        code, job = self._call(http, None, timeout, method="GET")
        current = _status_of(job.get("status")) if code == 200 and isinstance(job, dict) else None
        if current is None:
            if not self._gone(code, job):
                self._warn_once("status", "cannot read the status of job %s (HTTP %s)", code)
                self._ready.popleft()
            return
        handler = job.get("handler") if isinstance(job, dict) else None
        if target == JobStatus.RUNNING and (current == JobStatus.CANCELING or current.is_final):
            self._ready.popleft()
            self._girder_cancelled()
        elif target in (JobStatus.SUCCESS, JobStatus.ERROR) and current == JobStatus.CANCELING:
            self._ready[0] = JobStatus.CANCELED
        elif current == target or current.is_final:
            if current != target:
                logger.info("job %s already ended %s in Girder; not reporting %s", self.spec.job_id, current.name,
                            target.name)  # fmt: skip
            self._ready.popleft()
        else:
            path = JobStatus.transition_path(current, target, handler)
            self._ready.popleft()
            if path:
                self._ready.extendleft(reversed(path))
            else:
                self._warn_once("status", "Girder does not let job %s go from %s to %s", current.name, target.name)

    def _watch_for_cancel(self, body: Any) -> None:
        if isinstance(body, dict) and body.get("status") == JobStatus.CANCELING and self.final is None:
            self._girder_cancelled()

    def _girder_cancelled(self) -> None:
        """Girder says the job is cancelled: so is the run, if it is still going."""
        if self.cancelled_in_girder:
            return
        self.cancelled_in_girder = True
        callback = self.on_cancel
        if callback is not None and self.final is None:
            logger.info("job %s was cancelled in Girder; cancelling its task", self.spec.job_id)
            try:
                callback()
            except Exception:
                logger.exception("could not cancel the task of job %s", self.spec.job_id)

    def _gone(self, code: int, body: Any) -> bool:
        """Whether Girder will never take this job's reports: give the job up if so."""
        message = body.get("message", "") if isinstance(body, dict) else ""
        if 300 <= code < 400:
            logger.error(
                "Girder job %s: its callback URL %s answered HTTP %s, %s; the worker follows no redirect "
                "(its Girder-Token would go along), so the job's reports are dropped; set Girder's "
                "worker.api_url (or GIRDER_WORKER_API_URL) to the URL the redirect leads to",
                self.spec.job_id,
                shown_url(self.spec.url),
                code,
                message or "a redirect",
            )
            self.done = True
            return True
        if code in _GONE_CODES or (code == 400 and str(message).startswith("Invalid job id")):
            logger.error(
                "Girder refuses reports for job %s (HTTP %s: %s); they are dropped",
                self.spec.job_id,
                code,
                safe_text(message or "no message", 500),
            )
            self.done = True
            return True
        return False

    def _warn_once(self, kind: str, text: str, *args: Any) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(text, self.spec.job_id, *args)

    def give_up(self, seconds: float, reason: str) -> None:
        """Drop what is left, saying once what was lost."""
        if self.done:
            return
        self.done = True
        _metrics.reports_dropped()
        lost = f"its final status {self.final.name}" if self.final is not None else "its latest log and progress"
        logger.error(
            "gave up reporting to Girder job %s after %.0f s without an answer (%s): %s was not delivered",
            self.spec.job_id,
            seconds,
            reason,
            lost,
        )

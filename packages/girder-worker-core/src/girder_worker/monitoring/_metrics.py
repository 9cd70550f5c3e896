"""The worker's Prometheus metrics: what is counted and timed, and where.

Metrics are off unless ``GIRDER_WORKER_METRICS_PORT`` is set (see
:mod:`._metrics_step`, which serves them). Two kinds of hooks feed them:

* signals, whose receivers are connected only while metrics are on: Celery's
  (``task_prerun``, ``task_postrun``, ``task_success``, ``task_failure``,
  ``task_revoked``, ``worker_process_shutdown``) and girder-worker's moments of a
  cancel or a loss (:mod:`._moments`: ``cancel_received``, ``cancel_seen``,
  ``task_terminated``, ``task_lost``);
* one-line calls where no signal is sent (a duplicate dropped, a message refused,
  a Girder report that fails, the reports waiting)::

      _metrics.message_refused(headers)

  Each of these functions is a global read and a comparison while metrics are
  off.

Every process of a prefork worker writes its own counts (prometheus_client's
multiprocess mode); the main process adds them up when it is scraped. Task names
become label values only when the worker has a task of that name, so a stream
of hostile messages cannot make the label set grow.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any

from celery import signals

from ..cancellation import _moments
from ..delivery._gate import dropped

__all__ = [
    "SENT_HEADER",
    "disable",
    "duplicate_dropped",
    "enable",
    "message_refused",
    "report_backlog",
    "report_failed",
    "reports_dropped",
]

#: The header in which girder-worker's clients say when they published a task
#: message (seconds since the epoch); a worker's queue-wait histogram reads it.
SENT_HEADER = "girder_worker_sent_at"

PREFIX = "girder_worker_"
#: The label value of a task name this worker does not know.
UNREGISTERED = "(unregistered)"

_DURATIONS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
_WAITS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
_CANCEL_LATENCIES = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _Metrics:
    """The metric objects of one worker, made once when metrics are turned on."""

    def __init__(self, app: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name: str, doc: str, *labels: str) -> Any:
            return Counter(PREFIX + name, doc, labels, registry=None)

        self.tasks = app.tasks
        self.started_at: dict[str, float] = {}
        self._children: dict[tuple[Any, str], Any] = {}
        self.started = counter("tasks_started", "Task runs started.", "task")
        self.succeeded = counter("tasks_succeeded", "Task runs that ended SUCCESS.", "task")
        self.failed = counter("tasks_failed", "Tasks that ended FAILURE (lost ones included).", "task")
        self.revoked = counter("tasks_revoked", "Tasks that ended REVOKED: cancelled, terminated or expired.", "task")
        self.lost = counter("tasks_lost", "Runs lost with their pool process or worker.", "task")
        self.redelivered = counter("tasks_redelivered", "Lost tasks delivered again.", "task")
        self.terminated = counter("tasks_terminated", "Cancelled runs the worker terminated.", "task")
        self.duplicates = counter("duplicates_dropped", "Task messages dropped as duplicates of a run.", "task")
        self.refused = counter("messages_refused", "Task messages refused before they ran.", "task")
        self.cancels = counter("cancels_received", "Cancels received for tasks running or waiting here.", "task")
        self.report_failures = counter("girder_report_failures", "Girder job reports that got no answer.")
        self.reports_dropped = counter("girder_reports_dropped", "Girder jobs whose latest reports were dropped.")
        self.backlog = Gauge(
            PREFIX + "girder_report_backlog",
            "Girder jobs with reports not yet delivered.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.runtime = Histogram(
            PREFIX + "task_runtime_seconds", "Run time of tasks.", ["task"], buckets=_DURATIONS, registry=None
        )
        self.queue_wait = Histogram(
            PREFIX + "task_queue_wait_seconds",
            "Time from a task's publication (or its eta) to the start of its run.",
            ["task"],
            buckets=_WAITS,
            registry=None,
        )
        self.cancel_latency = Histogram(
            PREFIX + "cancel_latency_seconds",
            "Time from a cancel's arrival at the worker to its run stopping as cancelled.",
            ["task"],
            buckets=_CANCEL_LATENCIES,
            registry=None,
        )

    def label(self, name: Any) -> str:
        return name if isinstance(name, str) and name in self.tasks else UNREGISTERED

    def of(self, metric: Any, task_name: Any) -> Any:
        """``metric`` for the task ``task_name``; kept, as ``labels()`` takes a lock per call."""
        key = (metric, self.label(task_name))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(key[1])
        return child


_live: _Metrics | None = None


def enable(app: Any) -> None:
    """Turn metrics on in this process (and the pool processes it forks later).

    prometheus_client's multiprocess directory must be set up before: see
    :mod:`._metrics_step`.
    """
    global _live
    _live = _Metrics(app)
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"girder_worker.metrics.{receiver.__name__}")


def disable() -> None:
    """Turn metrics off in this process."""
    global _live
    _live = None
    for signal, receiver in _RECEIVERS:
        signal.disconnect(receiver, dispatch_uid=f"girder_worker.metrics.{receiver.__name__}")


# -- the one-line hooks ----------------------------------------------------------------


def duplicate_dropped(name: str) -> None:
    """A duplicate delivery of a task ``name`` was dropped."""
    m = _live
    if m is not None:
        m.of(m.duplicates, name).inc()


def message_refused(headers: Any) -> None:
    """A task message (with ``headers``) was refused before it ran."""
    m = _live
    if m is not None:
        m.of(m.refused, headers.get("task") if isinstance(headers, dict) else None).inc()


def report_failed() -> None:
    """A report to a Girder job got no answer."""
    m = _live
    if m is not None:
        m.report_failures.inc()


def reports_dropped() -> None:
    """A Girder job's latest reports were given up."""
    m = _live
    if m is not None:
        m.reports_dropped.inc()


def report_backlog(jobs: int) -> None:
    """This process holds reports for ``jobs`` Girder jobs not yet delivered."""
    m = _live
    if m is not None:
        m.backlog.set(jobs)


# -- Celery's signals, connected while metrics are on ----------------------------------


def _on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is None or task is None or task_id is None or dropped(task.request):  # a duplicate: no run
        return
    m.of(m.started, task.name).inc()
    m.started_at[task_id] = time.monotonic()
    wait = _queue_wait(task.request, time.time())
    if wait is not None:
        m.of(m.queue_wait, task.name).observe(wait)


def _queue_wait(request: Any, now: float) -> float | None:
    """Seconds from the message's publication (or its eta, if later) to ``now``."""
    sent = getattr(request, SENT_HEADER, None)
    if not isinstance(sent, int | float) or isinstance(sent, bool):
        return None  # published by a client that does not say when
    eta = getattr(request, "eta", None)
    if isinstance(eta, str):
        with contextlib.suppress(ValueError, OverflowError):
            sent = max(sent, datetime.fromisoformat(eta).timestamp())
    wait = now - sent
    # Another host's clock may be ahead; a value beyond a year is no publication time.
    return wait if 0 <= wait < 366 * 86400 else None


def _on_postrun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is None or task is None:
        return
    began = m.started_at.pop(task_id or "", None)
    if began is not None:
        m.of(m.runtime, task.name).observe(time.monotonic() - began)


def _on_success(sender: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is not None:
        m.of(m.succeeded, getattr(sender, "name", None)).inc()


def _on_failure(sender: Any = None, exception: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is None:
        return
    name = getattr(sender, "name", None)
    m.of(m.failed, name).inc()
    from billiard.exceptions import WorkerLostError

    if isinstance(exception, WorkerLostError):  # lost without a delivery policy (no lease store)
        m.of(m.lost, name).inc()


def _on_revoked(sender: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is not None:
        m.of(m.revoked, getattr(sender, "name", None)).inc()


# girder-worker's moments, sent in the worker's main process


def _on_cancel_received(task_name: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is not None:
        m.of(m.cancels, task_name).inc()


def _on_cancel_seen(task_name: Any = None, latency: float | None = None, **kwargs: Any) -> None:
    m = _live
    if m is not None and latency is not None:  # None: the cancel arrived at another worker
        m.of(m.cancel_latency, task_name).observe(max(0.0, latency))


def _on_terminated(task_name: Any = None, **kwargs: Any) -> None:
    m = _live
    if m is not None:
        m.of(m.terminated, task_name).inc()


def _on_lost(task_name: Any = None, delivered_again: bool = False, **kwargs: Any) -> None:
    m = _live
    if m is None:
        return
    m.of(m.lost, task_name).inc()
    if delivered_again:
        m.of(m.redelivered, task_name).inc()


def _on_process_shutdown(pid: int | None = None, **kwargs: Any) -> None:
    # A pool process that ends normally drops its live gauges (the backlog); the
    # endpoint drops those of processes that were killed when it is scraped.
    from prometheus_client import multiprocess

    if pid is not None:
        multiprocess.mark_process_dead(pid)


_RECEIVERS = (
    (signals.task_prerun, _on_prerun),
    (signals.task_postrun, _on_postrun),
    (signals.task_success, _on_success),
    (signals.task_failure, _on_failure),
    (signals.task_revoked, _on_revoked),
    (signals.worker_process_shutdown, _on_process_shutdown),
    (_moments.cancel_received, _on_cancel_received),
    (_moments.cancel_seen, _on_cancel_seen),
    (_moments.task_terminated, _on_terminated),
    (_moments.task_lost, _on_lost),
)


# -- the client side: every task message says when it was published ----------------------


@signals.before_task_publish.connect(dispatch_uid="girder_worker.metrics.sent_at")
def _stamp(headers: Any = None, **kwargs: Any) -> None:
    if isinstance(headers, dict):
        headers[SENT_HEADER] = time.time()

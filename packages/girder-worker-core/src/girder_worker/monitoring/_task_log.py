"""The worker's log lines: which task wrote them, and an optional JSON form.

Celery formats the lines of its task loggers with ``worker_task_log_format`` (the
task's name and id) and every other line, a task's ``print()`` included, with
``worker_log_format``. Here every handler Celery sets up gets a formatter that uses
the task format for any line written while a task runs in that thread, so output
and library logs carry the task id too. With ``GIRDER_WORKER_LOG_FORMAT=json`` each
line is one JSON object instead::

    {"time": "2026-12-03T17:42:25.120Z", "level": "INFO", "logger": "celery.redirected",
     "message": "step 1", "task_name": "gwexample.count", "task_id": "8c0f...", "girder_job_id": "6570..."}

Secrets are masked before either formatter sees a record (:mod:`._log_filter`, a
filter on the same handlers). A cancelled run is logged as revoked: Celery would
call it "ignored" (its run ends with ``Ignore``, as its state is already REVOKED).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import signals
from celery.app.log import TaskFormatter
from celery.utils.log import ColorFormatter

from girder_worker_utils.worker import JOB_MANAGER_ATTR

from .._celery_internals import current_task, ignored_task_line, task_line_fields

__all__ = ["JsonFormatter", "TaskAwareFormatter", "install"]

_FORMATS = ("text", "json")


class TaskAwareFormatter(ColorFormatter):  # type: ignore[misc]
    """Celery's formatter, with the task format for lines written while a task runs."""

    def __init__(self, fmt: str, task_fmt: str, use_color: bool = False) -> None:
        super().__init__(fmt, use_color)
        self.task_formatter = TaskFormatter(task_fmt, use_color)

    def format(self, record: logging.LogRecord) -> str:
        # Celery's own task lines ("Task x[id] succeeded ...") name their task already.
        if task_line_fields(record) is None and _running() is not None:
            return str(self.task_formatter.format(record))
        return str(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, task and Girder job."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
        }
        running = _running()
        if running is not None:
            task, request = running
            entry["task_name"] = task.name
            entry["task_id"] = request.id
            job_id = _job_id(request)
            if job_id is not None:
                entry["girder_job_id"] = job_id
        data = task_line_fields(record)  # Celery's task lines name their task here
        if data is not None and "task_id" not in entry and data.get("id"):
            entry["task_name"] = str(data.get("name"))
            entry["task_id"] = str(data.get("id"))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def _running() -> tuple[Any, Any] | None:
    """The task running in this thread and its request, or None."""
    task = current_task()
    if task is None:
        return None
    request = task.request_stack.top
    return (task, request) if request is not None and request.id else None


def _job_id(request: Any) -> str | None:
    channel = request.__dict__.get(JOB_MANAGER_ATTR)
    job_id = getattr(getattr(channel, "spec", None), "job_id", None)
    return str(job_id) if job_id else None


class _RevokedNotIgnored(logging.Filter):
    """Celery's "Task x[id] ignored" line of a cancelled run, said as what it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = ignored_task_line(record)
        if args is not None:
            exc = str(args.get("exc", ""))
            if exc.startswith("RunRevoked("):
                reason = _reason_of(exc)
                record.msg = "Task %(name)s[%(id)s] revoked: %(reason)s"
                record.args = {**args, "description": "revoked", "reason": reason}
        return True


def _reason_of(exc_repr: str) -> str:
    """``"cancelled"`` out of ``"RunRevoked('cancelled', False)"``."""
    inner = exc_repr[len("RunRevoked(") :].rsplit(",", 1)[0]
    return inner.strip().strip("'\"") or "cancelled"


_revoked_filter = _RevokedNotIgnored()


def install(log_format: str, app: Any) -> None:
    """Set the worker's log up: ``log_format`` is ``"text"`` or ``"json"``."""
    trace = logging.getLogger("celery.app.trace")
    if _revoked_filter not in trace.filters:
        trace.addFilter(_revoked_filter)
    _state["format"] = log_format
    _state["app"] = app


_state: dict[str, Any] = {"format": "text", "app": None}


@signals.after_setup_logger.connect(dispatch_uid="girder_worker.task_log.root")
@signals.after_setup_task_logger.connect(dispatch_uid="girder_worker.task_log.task")
def _on_logging_set_up(logger: logging.Logger | None = None, colorize: bool = False, **kwargs: Any) -> None:
    app = _state["app"]
    if logger is None or app is None:
        return
    formatter: logging.Formatter
    if _state["format"] == "json":
        formatter = JsonFormatter()
    else:
        formatter = TaskAwareFormatter(app.conf.worker_log_format, app.conf.worker_task_log_format, bool(colorize))
    for handler in logger.handlers:
        handler.setFormatter(formatter)

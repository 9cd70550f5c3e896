"""Capture of a task's output for its Girder job log, by thread.

A task's ``print``, anything written to ``sys.stdout`` or ``sys.stderr`` and the
records of the ``girder_worker`` logger go to its job's log. The streams are
replaced once per process by routers that pass everything on to the stream they
replaced and also hand it to the job of the thread that wrote it, so tasks that
run at the same time in one process (the threads pool) keep their logs apart, and
output of the worker's own threads goes to no job.

Output of threads a task starts itself, and of subprocesses, is not captured:
the task can pass it on with ``self.job_manager.write(text)``. Tokens are masked
in everything that reaches a job's log (see :mod:`girder_worker.monitoring._log_filter`).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any, TextIO

from ..monitoring._log_filter import add_to

__all__ = ["begin", "end", "install"]

Sink = Callable[[str], None]

_sinks: dict[int, Sink] = {}
_install_lock = threading.Lock()


def _sink_failed() -> None:
    logging.getLogger("girder_worker.girder").debug("capturing output for a job log failed", exc_info=True)


class _Router:
    """Stands in for ``sys.stdout`` or ``sys.stderr``; see the module documentation."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        sink = _sinks.get(get_ident())
        if sink is not None and text:
            try:
                sink(text)
            except Exception:  # the job log must never break a print
                _sink_failed()
        result: int = self._inner.write(text)
        return result

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Handler(logging.Handler):
    """Sends ``girder_worker`` log records to the job of the thread that logged them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _sinks.get(threading.get_ident())
        if sink is None:
            return
        try:
            sink(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_handler = _Handler()
add_to([_handler])  # tokens masked and names escaped in the job log as in the worker log


def install() -> None:
    """Put the routers in place (again, if something replaced them since)."""
    if isinstance(sys.stdout, _Router) and isinstance(sys.stderr, _Router):
        return
    with _install_lock:
        if not isinstance(sys.stdout, _Router) and sys.stdout is not None:
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router) and sys.stderr is not None:
            sys.stderr = _Router(sys.stderr)
        logger = logging.getLogger("girder_worker")
        if _handler not in logger.handlers:
            logger.addHandler(_handler)


def begin(sink: Sink) -> None:
    """Send what this thread writes to ``sink`` too, until :func:`end`."""
    install()
    _sinks[threading.get_ident()] = sink


def end(sink: Sink | None = None) -> None:
    """Stop capturing this thread's output (only ``sink``'s, if given)."""
    ident = threading.get_ident()
    if sink is None or _sinks.get(ident) == sink:
        _sinks.pop(ident, None)

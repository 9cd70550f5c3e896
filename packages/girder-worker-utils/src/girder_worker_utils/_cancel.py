"""The per-run cancellation flag that a task reads through ``self.cancelled``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["CancelFlag", "run_cancel_callback"]

logger = logging.getLogger("girder_worker.cancel")


class CancelFlag:
    """Whether one run of a task was cancelled, and what to do when it is.

    The worker attaches one to each running task's request. Reading
    :meth:`is_set` is a plain attribute read; the worker calls :meth:`set` from
    another thread when the cancel arrives, which also runs the callbacks the
    task registered with :meth:`add_callback`.
    """

    __slots__ = ("_callbacks", "_lock", "_set", "reason", "thread_id", "time_limit")

    def __init__(self) -> None:
        self._set = False
        self.reason: str | None = None
        #: ``"soft"`` or ``"hard"`` when a time limit, not a user, stopped the run.
        self.time_limit: str | None = None
        self._callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self.thread_id = threading.get_ident()

    def is_set(self) -> bool:
        return self._set

    def set(self, reason: str = "cancelled", time_limit: str | None = None) -> None:
        """Mark the run cancelled (once), after running its callbacks.

        The task sees :meth:`is_set` only once the callbacks have run, so its final
        state is never written before its cleanup. ``time_limit`` (``"soft"`` or
        ``"hard"``) says a time limit stopped the run; a hard limit replaces any
        earlier reason, since it ends the run whatever came before.
        """
        with self._lock:
            first = self.reason is None
            if first or time_limit == "hard":
                self.reason, self.time_limit = reason, time_limit
            if not first:
                return
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            run_cancel_callback(callback)
        self._set = True

    def add_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once when the run is cancelled (now, if it already is)."""
        with self._lock:
            if self.reason is None:
                self._callbacks.append(callback)
                return
        run_cancel_callback(callback)

    def run_pending_callbacks(self) -> None:
        """Nothing to do: :meth:`set` runs the callbacks before the flag goes up."""


def run_cancel_callback(callback: Callable[[], object]) -> None:
    """Call one cancel callback; an exception it raises is logged, never propagated.

    A callback that fails must not stop the others, nor the flag going up.
    """
    try:
        callback()
    except Exception:
        logger.exception("cancel callback %r raised", callback)


_run_callback = run_cancel_callback  # the name core imported before girder_worker_utils.worker

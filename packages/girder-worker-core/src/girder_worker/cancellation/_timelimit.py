"""Time limits that the worker's main process enforces, in every pool.

A run's limits come from where Celery takes them: the call
(``apply_async(time_limit=..., soft_time_limit=...)``), the task (its
``time_limit`` and ``soft_time_limit``) and the worker (``task_time_limit``,
``task_soft_time_limit``, ``--time-limit``, ``--soft-time-limit``). Celery enforces
them in its prefork pool only, raising the soft limit into the task as an
exception that ``except Exception`` swallows and that waits for a C call to return.

Here the main process keeps the deadlines, from the moment a run starts. At the soft
limit the run is cancelled the way a user's cancel reaches it, with a reason it can
read (``self.cancel_reason == "soft time limit (2 s) exceeded"``), and without
recording a cancel: a retry of the task runs normally. The run may then clean up
until its hard limit, or without one for its cancel grace period, after which it is
terminated like a cancelled run that does not stop (its pool process and what that
started, in prefork; its thread otherwise). Either way it ends ``FAILURE`` with
Celery's :class:`~celery.exceptions.SoftTimeLimitExceeded` or
:class:`~celery.exceptions.TimeLimitExceeded`, whose message says which limit.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import bootsteps
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker_utils import TaskTerminated

from .._celery_internals import (
    is_active,
    request_of_pool_call,
    request_time_limits,
    take_worker_time_limits,
    wrap_pool_apply_async,
)
from . import _moments
from ._cancel import REGISTRY, CancelStep, _kill_descendants, grace_period, interrupt_run

__all__ = ["TimeLimitStep", "reason_for"]

logger = logging.getLogger("girder_worker.timelimit")

#: How soon to try again to reach a run that has not yet attached its cancel flag.
_RETRY_SECONDS = 0.02


def _seconds(value: float) -> str:
    return f"{value:g} s"


def reason_for(limit: str, seconds: float) -> str:
    """The reason a run stopped by its ``limit`` (``"soft"`` or ``"hard"``) is given."""
    return f"{limit} time limit ({_seconds(seconds)}) exceeded"


@dataclass
class _Run:
    """One run with a time limit: its Celery request (None once it ended) and its limits."""

    request: Any
    soft: float | None
    hard: float | None
    grace: float | None
    pid: int | None = None
    #: Its calls waiting in the timer (what ``_Timer.at`` returned), cancelled when it ends.
    timers: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name: str = self.request.name
        self.task_id: str = self.request.id

    def running(self) -> Any:
        """Its request while it runs here, else None."""
        request = self.request
        return request if request is not None and is_active(request) else None

    @property
    def last_limit(self) -> tuple[str, float] | None:
        """The limit that ends the run, and when (seconds after its start)."""
        if self.hard:
            return "hard", self.hard
        if self.soft and self.grace is not None:
            return "soft", self.soft + self.grace
        return None


class _Timer:
    """Calls functions at monotonic times, from one daemon thread.

    :meth:`at` returns the entry of the call, which :meth:`cancel` takes: a run that
    ends cancels its calls, so that the heap holds the runs in progress, not every run
    of the last time-limit period (a solo worker with a 300 s limit and 600 tasks a
    second would hold 180,000 finished runs). A cancelled entry stays in the heap
    until it comes up or the cancelled ones are half of the heap, when it is rebuilt
    without them.
    """

    #: Below this many cancelled entries the heap is never rebuilt.
    REBUILD_AT = 64

    def __init__(self) -> None:
        # Entries are [when, sequence, function, args]; function None: cancelled or made.
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def at(self, when: float, function: Callable[..., None], *args: Any) -> list[Any]:
        entry = [when, next(self._seq), function, args]
        with self._cond:
            heapq.heappush(self._heap, entry)
            # The thread sleeps until the earliest deadline: it needs waking only when
            # this one is now the earliest. (Every run with a time limit comes here as it
            # starts; waking the thread each time made it contend for the GIL per task.)
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        """Do not make the call of ``entry``; nothing if it was made or cancelled already."""
        with self._cond:
            if entry[2] is None:
                return
            entry[2], entry[3] = None, ()
            self._cancelled += 1
            if self._cancelled >= self.REBUILD_AT and 2 * self._cancelled >= len(self._heap):
                self._heap = [e for e in self._heap if e[2] is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """How many calls are waiting (not made, not cancelled)."""
        with self._cond:
            return len(self._heap) - self._cancelled

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="girder-worker-time-limits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopping:
                    return
                entry = heapq.heappop(self._heap)
                function, args = entry[2], entry[3]
                if function is None:
                    self._cancelled -= 1
                    continue
                entry[2], entry[3] = None, ()
            try:
                function(*args)
            except Exception:
                logger.exception("the worker's timer call %r failed", function)


class TimeLimitStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: takes the time limits from the pool and enforces them itself."""

    label = "girder-worker time limits"
    requires = (CancelStep,)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.worker = worker
        self.app = worker.app
        # The worker-wide limits. Every step is made before any creates the pool, so
        # the pool never sees them: Celery would otherwise enforce them on its own.
        self.default_hard: float | None
        self.default_soft: float | None
        self.default_hard, self.default_soft = take_worker_time_limits(worker)
        self.prefork = False
        self.timer = _Timer()
        # The worker's one timer thread: a solo worker's held acknowledgements use it too
        # (girder_worker.broker._solo_acks).
        worker.run_timer = self.timer

    def create(self, worker: Any) -> None:
        self.prefork = REGISTRY.table is not None
        wrap_pool_apply_async(worker.pool, self._options)

    def start(self, worker: Any) -> None:
        self._warn_unseen_soft_limits()
        self.timer.start()

    def stop(self, worker: Any) -> None:
        self.timer.stop()

    # main thread: a run handed to the pool -----------------------------------
    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The pool's options for one run: no time limits of Celery's, ours instead."""
        # Celery's Request hands over its on_timeout; without a request, Celery keeps them.
        request = request_of_pool_call(options)
        if request is None:
            return options
        given_soft, given_hard = options.pop("soft_timeout", None), options.pop("timeout", None)
        # The call's limits, else the task's as they are now: Celery's request class
        # keeps the task's limits from the worker's start, so `celery control
        # time_limit` would not reach a task that already ran here.
        call_hard, call_soft = request_time_limits(request)
        task = getattr(request, "task", None)
        soft = call_soft or getattr(task, "soft_time_limit", None) or given_soft or self.default_soft
        hard = call_hard or getattr(task, "time_limit", None) or given_hard or self.default_hard
        if not (soft or hard):
            return options
        run = _Run(request, soft, hard, self._grace_for(request))
        options["accept_callback"] = partial(self._started, run, options.get("accept_callback"))
        # A finished run lets go of its request at once, not at its deadlines.
        options["callback"] = partial(_ended, self.timer, run, options.get("callback"))
        on_failure = options.get("error_callback")
        last = run.last_limit
        if self.prefork and last is not None:
            # Billiard's own timer kills the pool process at the last limit. It fails
            # the run with TimeLimitExceeded(4.0) through the error callback, then
            # calls the timeout callback, which would report it a second time.
            options["timeout"] = last[1]
            on_failure = partial(self._pool_failed, run, on_failure)
            options["timeout_callback"] = partial(self._pool_timed_out, run)
        options["error_callback"] = partial(_ended, self.timer, run, on_failure)
        return options

    def _grace_for(self, request: Any) -> float | None:
        return grace_period(request.task, self.app)

    def _started(self, run: _Run, accepted: Callable[..., Any] | None, pid: int, *args: Any) -> None:
        run.pid = pid
        if accepted is not None:
            accepted(pid, *args)
        if run.request is None:  # it ended already (a callback of the pool's came first)
            return
        now = time.monotonic()
        if run.soft and (not run.hard or run.soft < run.hard):
            run.timers.append(self.timer.at(now + run.soft, self._soft_limit, run))
        last = run.last_limit
        if not self.prefork and last is not None:
            run.timers.append(self.timer.at(now + last[1], self._terminate, run, last[0]))

    # timer thread ----------------------------------------------------------
    def _soft_limit(self, run: _Run) -> None:
        request = run.running()
        if request is None:
            return
        assert run.soft is not None
        reason = reason_for("soft", run.soft)
        if self.prefork:
            assert REGISTRY.table is not None
            reached = REGISTRY.table.expire(request.id, "soft", reason) is not None
        else:
            with REGISTRY.lock:
                flag = REGISTRY.local.get(request.id)
            reached = flag is not None
            if flag is not None:
                flag.set(reason, time_limit="soft")
        if not reached:  # between its start and its task_prerun: soon there
            run.timers.append(self.timer.at(time.monotonic() + _RETRY_SECONDS, self._soft_limit, run))
            return
        last = run.last_limit
        if last is None:
            then = "it will not be terminated (its cancel grace period is 'never')"
        elif last[0] == "hard":
            then = f"it is terminated at its hard time limit ({_seconds(last[1])})"
        else:
            then = f"it is terminated if it still runs after its cancel grace period ({_seconds(run.grace or 0)})"
        logger.warning("task %s[%s]: %s; the task was cancelled, %s", request.name, request.id, reason, then)

    def _terminate(self, run: _Run, limit: str) -> None:
        """Solo and threads pools: raise TaskTerminated into the run's thread."""
        request = run.running()
        if request is None:
            return
        seconds = run.hard if limit == "hard" else run.soft
        assert seconds is not None
        reason = reason_for(limit, seconds)
        with REGISTRY.lock:
            flag = REGISTRY.local.get(request.id)
        if flag is None:
            return
        flag.set(reason, time_limit=limit)
        killed = interrupt_run(request.id)
        if killed is None:
            return
        logger.error(
            "task %s[%s]: %s; terminated its thread%s",
            request.name,
            request.id,
            reason,
            f" and its child processes {killed}" if killed else "",
        )
        _moments.terminated(self.worker.hostname, request.id, request.name, reason)

    # prefork: billiard's timer thread or the event loop -----------------------
    def _pool_failed(
        self, run: _Run, on_failure: Callable[..., Any] | None, exc_info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """Celery's failure handler, told which limit ended the run."""
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback
        if isinstance(exc, TimeLimitExceeded):  # only billiard's timer fails a run with it here
            limit, reason = _last_reason(run)
            error = (TimeLimitExceeded if limit == "hard" else SoftTimeLimitExceeded)(reason)
            try:
                raise error from TaskTerminated(reason)
            except type(error):
                exc_info = ExceptionInfo()
            exc_info.exception = error  # unwrapped, as from a pool process: the task-failed event names it
        return on_failure(exc_info, *args, **kwargs) if on_failure is not None else None

    def _pool_timed_out(self, run: _Run, soft: bool, timeout: float) -> None:
        """The pool process is killed right after this: stop what it started first."""
        _, reason = _last_reason(run)
        killed: list[int] = []
        pid = run.pid
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)  # it can start no more processes meanwhile
                try:
                    killed = _kill_descendants(pid)
                finally:
                    os.kill(pid, signal.SIGCONT)
        logger.error(
            "task %s[%s]: %s; terminated its pool process %s%s",
            run.name,
            run.task_id,
            reason,
            pid,
            f" and its child processes {killed}" if killed else "",
        )
        _moments.terminated(self.worker.hostname, run.task_id, run.name, reason)

    # worker start ---------------------------------------------------------------
    def _warn_unseen_soft_limits(self) -> None:
        soft, hard = self.default_soft, self.default_hard
        if soft and hard and soft >= hard:
            logger.warning(
                "task_soft_time_limit (%s) is not below task_time_limit (%s), so no task sees its soft limit; "
                "set task_soft_time_limit lower",
                _seconds(soft),
                _seconds(hard),
            )
        for name, task in sorted(self.app.tasks.items()):
            own_soft, own_hard = task.soft_time_limit, task.time_limit
            if not (own_soft or own_hard):
                continue
            soft, hard = own_soft or self.default_soft, own_hard or self.default_hard
            if soft and hard and soft >= hard:
                logger.warning(
                    "task %s: its soft time limit (%s) is not below its hard time limit (%s), so it never sees "
                    "the soft one; set soft_time_limit below time_limit",
                    name,
                    _seconds(soft),
                    _seconds(hard),
                )


def _ended(timer: _Timer, run: _Run, callback: Callable[..., Any] | None, *args: Any, **kwargs: Any) -> Any:
    """A pool callback of a run that just ended: forget its request and its deadlines, then call on."""
    run.request = None
    while run.timers:
        timer.cancel(run.timers.pop())
    return callback(*args, **kwargs) if callback is not None else None


def _last_reason(run: _Run) -> tuple[str, str]:
    """The limit that ended a terminated run, and its reason."""
    limit, seconds = ("hard", run.hard) if run.hard else ("soft", run.soft)
    assert seconds is not None
    return limit, reason_for(limit, seconds)

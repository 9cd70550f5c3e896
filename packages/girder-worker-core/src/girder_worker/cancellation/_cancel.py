"""Cancellation that reaches the running task in every pool and outlives restarts.

The flow: a client calls ``revoke`` (Celery's, or :func:`cancel`); the id goes
into the durable store and out on Celery's broadcast. In each worker a listener
thread with its own broker connection receives it, so it arrives even while a
solo worker is busy running the task. The listener marks the id in Celery's
revoked set (a queued task never starts), sets the running task's flag (through
the shared table for a prefork child), and, if the task has not stopped when its
grace period ends, terminates exactly that task.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from billiard.process import current_process
from celery import bootsteps, signals
from celery.app.control import Control as CeleryControl
from celery.concurrency.solo import TaskPool as SoloPool
from celery.concurrency.thread import TaskPool as ThreadPool
from celery.result import AsyncResult
from celery.states import READY_STATES
from celery.utils.functional import maybe_list
from kombu.entity import Queue

from girder_worker_utils import CancelFlag, TaskTerminated
from girder_worker_utils.worker import CANCEL_ATTR

from .._celery_internals import active_requests, mark_revoked, replace_revoke_command, reserved_requests
from . import _moments
from ._shm import SharedTable
from ._store import CancelStore, store_for

__all__ = ["CancelOutcome", "CancelStep", "Control", "cancel"]

logger = logging.getLogger("girder_worker.cancel")

_REMEMBERED = 100_000
_SWITCH_INTERVAL = 0.0005
_TERMINATE_SIGNAL = getattr(signal, "SIGRTMIN", signal.SIGUSR2) + (3 if hasattr(signal, "SIGRTMIN") else 0)


class _Registry:
    """This process's cancellations and the flags of tasks running in it."""

    def __init__(self) -> None:
        self.cancelled: OrderedDict[str, str] = OrderedDict()
        #: When a cancel of a task running here arrived (monotonic), until the run ends.
        self.arrived: dict[str, float] = {}
        self.local: dict[str, Any] = {}
        self.table: SharedTable | None = None
        self.lock = threading.Lock()
        self.main_thread_target: str | None = None

    def forget_arrival(self, task_id: str) -> float | None:
        """Forget when a cancel of ``task_id`` arrived (its run ended); return that time, if any."""
        if not self.arrived:  # the common case: no cancel pending here, no lock taken
            return None
        with self.lock:
            return self.arrived.pop(task_id, None)

    def deliver(self, task_ids: Iterable[str], reason: str) -> None:
        for task_id in task_ids:
            with self.lock:
                self.cancelled[task_id] = reason
                while len(self.cancelled) > _REMEMBERED:
                    self.cancelled.popitem(last=False)
                flag = self.local.get(task_id)
            mark_revoked((task_id,))
            if flag is not None:
                flag.set(reason)
            if self.table is not None:
                self.table.cancel(task_id, reason)


REGISTRY = _Registry()


@replace_revoke_command(help="Cancel tasks by id: queued ones never start, running ones see self.cancelled.")
def _revoke_command(state: Any, task_id: Any, terminate: bool = False, signal: Any = None, **kwargs: Any) -> Any:
    # Replaces Celery's handler, which marks a revoked task REVOKED in the result
    # backend unless this worker runs it, even while another worker does: the state
    # would then flip from REVOKED to SUCCESS when that task finishes. Here the
    # worker that holds the task sets its final state, and termination goes through
    # the cancel listener, which works in every pool.
    task_ids = set(maybe_list(task_id) or [])
    mark_revoked(task_ids)
    return {"ok": f"tasks {', '.join(sorted(task_ids))} flagged as revoked"}


# -- where the task runs ------------------------------------------------------


def _in_pool_child() -> bool:
    return REGISTRY.table is not None and os.getpid() != REGISTRY.table.owner_pid


@signals.task_prerun.connect(dispatch_uid="girder_worker.cancel.attach")
def _attach_flag(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    if _in_pool_child():
        assert REGISTRY.table is not None
        flag: Any = REGISTRY.table.begin(current_process().index, task_id)
    else:
        flag = CancelFlag()
        with REGISTRY.lock:
            REGISTRY.local[task_id] = flag
            reason = REGISTRY.cancelled.get(task_id)
        if reason is not None:
            flag.set(reason)
    request.__dict__[CANCEL_ATTR] = flag


@signals.task_postrun.connect(dispatch_uid="girder_worker.cancel.detach")
def _detach_flag(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is None:
        return
    flag = task.request.__dict__.pop(CANCEL_ATTR, None)
    if _in_pool_child():
        assert REGISTRY.table is not None
        REGISTRY.table.end(current_process().index)
        if flag is not None:
            flag.close()
    else:
        with REGISTRY.lock:
            REGISTRY.local.pop(task_id or "", None)


def _raise_in_main_thread(signum: int, frame: Any) -> None:
    target, REGISTRY.main_thread_target = REGISTRY.main_thread_target, None
    if target is not None and target in REGISTRY.local:
        raise TaskTerminated()


def grace_period(task: Any, app: Any) -> float | None:
    """Seconds a cancelled run of ``task`` may take to stop: its own, else the worker's; None: never."""
    declared = getattr(task, "cancel_grace_period", None)
    if declared is not None:
        return float(declared)
    default: float | None = app.girder_worker_config.cancel_grace_period
    return default


# -- the worker's listener ---------------------------------------------------


def _kill_descendants(pid: int) -> list[int]:
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    return [c.pid for c in children]


def interrupt_run(task_id: str) -> list[int] | None:
    """Raise :class:`TaskTerminated` into the thread that runs ``task_id`` (solo, threads).

    When it is the only run, the worker's child processes are killed first, since
    they can only be its. Returns their pids, or None if no thread here runs it.
    """
    flag = REGISTRY.local.get(task_id)
    if flag is None:
        return None
    alone = sum(1 for _ in active_requests()) == 1
    killed = _kill_descendants(os.getpid()) if alone else []
    if flag.thread_id == threading.main_thread().ident:
        REGISTRY.main_thread_target = task_id
        signal.pthread_kill(flag.thread_id, _TERMINATE_SIGNAL)
    else:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(flag.thread_id), ctypes.py_object(TaskTerminated))
    return killed


class CancelStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: the shared table, the durable ids, the listener thread."""

    label = "girder-worker cancellation"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.worker = worker
        self.app = worker.app
        self.listener: threading.Thread | None = None
        self.stopping = threading.Event()
        self.escalations: list[tuple[float, str]] = []
        self.store: CancelStore | None = None
        self._store_failed = False

    def create(self, worker: Any) -> None:
        if not isinstance(worker.pool_cls, type) or not issubclass(worker.pool_cls, (SoloPool, ThreadPool)):
            REGISTRY.table = SharedTable(max(worker.max_concurrency or 0, worker.concurrency or 1))
        self.store = store_for(self.app)
        if self.store is None:
            logger.warning(
                "cancellations are not durable with the result backend %s: a cancel sent while no "
                "worker runs is lost; set GIRDER_WORKER_BACKEND to redis://... to keep them",
                self.app.backend.as_uri(),
            )
            return
        try:
            remembered = self.store.recent()
        except Exception as exc:
            logger.error("could not read earlier cancellations from %s: %s", self.app.backend.as_uri(), exc)
            return
        REGISTRY.deliver(remembered, "cancelled")

    def start(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(_TERMINATE_SIGNAL, _raise_in_main_thread)
        if REGISTRY.table is None and sys.getswitchinterval() > _SWITCH_INTERVAL:
            # In solo and threads pools the task shares the GIL with the listener; a task
            # busy in Python would hold a cancel back 5 ms (the default) per GIL hand-over.
            sys.setswitchinterval(_SWITCH_INTERVAL)
        self.listener = threading.Thread(target=self._listen, name="girder-worker-cancel", daemon=True)
        self.listener.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.join(timeout=5)

    # listener thread -----------------------------------------------------
    def _listen(self) -> None:
        mailbox = self.app.control.mailbox
        queue = Queue(
            f"{self.worker.hostname}.girder_worker.cancel",
            exchange=mailbox.exchange,
            durable=False,
            # Gone with its worker: what a worker misses while down is in the durable store.
            auto_delete=True,
            message_ttl=300.0,
        )
        failures = 0
        while not self.stopping.is_set():
            try:
                with (
                    self.app.connection_for_read() as conn,
                    conn.Consumer(queue, callbacks=[self._on_message], accept=["json"], no_ack=True),
                ):
                    if failures:
                        logger.info("cancel listener reconnected to the broker")
                    failures = 0
                    while not self.stopping.is_set():
                        with contextlib.suppress(socket.timeout, TimeoutError):
                            conn.drain_events(timeout=0.1)
                        self._escalate_due()
            except Exception as exc:
                if failures == 0:
                    logger.error("cancel listener cannot consume from the broker (%s); retrying every second", exc)
                failures += 1
                self.stopping.wait(1.0)

    def _on_message(self, body: Any, message: Any) -> None:
        if not isinstance(body, dict) or body.get("method") != "revoke":
            return
        destination = body.get("destination")
        if destination and self.worker.hostname not in destination:
            return
        arguments = body.get("arguments") or {}
        ids = arguments.get("task_id")
        ids = [ids] if isinstance(ids, str) else [i for i in ids or () if isinstance(i, str)]
        reason = str(arguments.get("girder_worker_reason") or "cancelled")
        self.on_revoke(ids, reason, bool(arguments.get("terminate")))

    def on_revoke(self, ids: list[str], reason: str, terminate: bool) -> None:
        arrived = time.monotonic()
        REGISTRY.deliver(ids, reason)
        if self.store is not None:
            try:
                self.store.add(ids)
            except Exception as exc:
                if not self._store_failed:
                    logger.error("could not record cancellations in %s: %s", self.app.backend.as_uri(), exc)
                self._store_failed = True
        wanted = set(ids)
        running = {r.id: r for r in list(active_requests()) if r.id in wanted}
        hostname = self.worker.hostname
        for request in [r for r in list(reserved_requests()) if r.id in wanted and r.id not in running]:
            _moments.received(hostname, request, reason, running=False, grace=None)
        for task_id, request in running.items():
            grace = 0.0 if terminate else self._grace_for(request)
            with REGISTRY.lock:
                REGISTRY.arrived.setdefault(task_id, arrived)
            _moments.received(hostname, request, reason, running=True, grace=grace)
            if grace is not None:
                heapq.heappush(self.escalations, (time.monotonic() + grace, task_id))

    def _grace_for(self, request: Any) -> float | None:
        return grace_period(request.task, self.app)

    def _escalate_due(self) -> None:
        now = time.monotonic()
        while self.escalations and self.escalations[0][0] <= now:
            _, task_id = heapq.heappop(self.escalations)
            try:
                self.terminate(task_id)
            except Exception:
                logger.exception("could not terminate task %s", task_id)

    def terminate(self, task_id: str) -> None:
        """Stop a cancelled task that is still running here, and what it started."""
        request = next((r for r in active_requests() if r.id == task_id), None)
        if request is None:
            return
        pool = self.worker.pool
        if REGISTRY.table is not None:
            pid = REGISTRY.table.pid_running(task_id)
            if pid is None:
                return
            os.kill(pid, signal.SIGSTOP)  # the process cannot move on to another task meanwhile
            try:
                if REGISTRY.table.pid_running(task_id) != pid:
                    return
                killed = _kill_descendants(pid)
                request.terminate(pool, signal.SIGKILL)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            where = f"its pool process {pid}"
        else:
            interrupted = interrupt_run(task_id)
            if interrupted is None:
                return
            killed = interrupted
            where = "its thread"
        logger.warning(
            "task %s[%s] did not stop within its cancel grace period: terminated %s%s",
            request.name,
            task_id,
            where,
            f" and its child processes {killed}" if killed else "",
        )
        with REGISTRY.lock:
            REGISTRY.arrived.pop(task_id, None)
            reason = REGISTRY.cancelled.get(task_id, "cancelled")
        _moments.terminated(self.worker.hostname, task_id, request.name, reason)


# -- the client side -------------------------------------------------------------


class Control(CeleryControl):  # type: ignore[misc]
    """Celery's remote control; ``revoke`` also records the ids durably."""

    def revoke(
        self, task_id: Any, destination: Any = None, terminate: bool = False, signal: Any = "SIGTERM", **kwargs: Any
    ) -> Any:
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        record(self.app, ids)
        return super().revoke(task_id, destination=destination, terminate=terminate, signal=signal, **kwargs)


def record(app: Any, ids: list[str]) -> None:
    """Write ``ids`` to the durable store, and to this process's registry when eager."""
    store = store_for(app)
    if store is not None:
        store.add(ids)
    if app.conf.task_always_eager:
        REGISTRY.deliver(ids, "cancelled")


@dataclass(frozen=True)
class CancelOutcome:
    """What :func:`cancel` did."""

    task_id: str
    sent: bool
    message: str


def cancel(task: str | AsyncResult, app: Any = None, reason: str = "cancelled") -> CancelOutcome:
    """Cancel a task by id or result, wherever it is: queued, running, or not yet sent.

    The running task sees ``self.cancelled``; a queued one never starts; a cancel
    sent while no worker runs takes effect when one starts. A task that already
    finished is left as it is::

        from girder_worker import cancel
        outcome = cancel(result)
        print(outcome.message)
    """
    if app is None:
        from ..app import app as default_app

        app = default_app
    result = task if isinstance(task, AsyncResult) else app.AsyncResult(task)
    state = result.state
    if state in READY_STATES:
        return CancelOutcome(result.id, False, f"task {result.id} already finished ({state}); nothing to cancel")
    record(app, [result.id])
    app.control.broadcast(
        "revoke",
        arguments={"task_id": result.id, "terminate": False, "signal": "SIGTERM", "girder_worker_reason": reason},
    )
    return CancelOutcome(result.id, True, f"cancel of task {result.id} sent ({state})")

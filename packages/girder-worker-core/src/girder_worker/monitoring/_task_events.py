"""Celery's task events tell what happened to a cancelled or lost task.

Flower and ``celery events`` follow a task through the events its worker sends
(``task-received``, ``task-started``, then one of ``task-succeeded``,
``task-failed``, ``task-revoked``). Celery sends ``task-revoked`` itself when it
discards a revoked task before it starts and when it terminates a prefork run;
girder-worker's other endings get theirs here:

* a run that saw its cancel and stopped (or was interrupted in its thread after its
  grace period: ``terminated=True``) ends with
  :class:`~girder_worker_utils.worker.RunRevoked`, which Celery treats as
  ``Ignore`` and announces nothing for: :func:`follow` announces it revoked;
* a task whose whole worker was lost and that is failed by another worker: that
  worker sends ``task-failed`` (:func:`announce_lost`).

Every ``task-revoked`` event of a cancelled task also carries ``reason``, the
cancel's reason (``"cancelled"``, ``"cancelled in Girder"``, ...), through the app's
event dispatcher class (:class:`Events`). Events go out only while the worker's
task events are enabled (``-E``, or ``celery control enable_events``).
"""

from __future__ import annotations

import time
from typing import Any

from celery.app.events import Events as CeleryEvents
from celery.events.dispatcher import EventDispatcher as CeleryDispatcher

from girder_worker_utils import TaskLost
from girder_worker_utils.worker import RunRevoked

from .._celery_internals import event_dispatcher, replace_request_callbacks
from .._outcome import Outcome, of_lost
from ..cancellation import _moments
from ..cancellation._cancel import REGISTRY

__all__ = ["EventDispatcher", "Events", "announce_lost", "follow"]


class EventDispatcher(CeleryDispatcher):  # type: ignore[misc]
    """Celery's event dispatcher; a ``task-revoked`` event also says why the task was cancelled."""

    def send(self, type: str, *args: Any, **fields: Any) -> Any:
        if type == "task-revoked" and "reason" not in fields:
            reason = REGISTRY.cancelled.get(str(fields.get("uuid")))
            if reason is not None:
                fields["reason"] = reason
        return super().send(type, *args, **fields)


class Events(CeleryEvents):  # type: ignore[misc]
    """The app's ``app.events``, with girder-worker's dispatcher."""

    dispatcher_cls = "girder_worker.monitoring._task_events:EventDispatcher"


def follow(request: Any, hostname: str) -> None:
    """Announce ``request`` revoked if its run ends cancelled.

    Celery's request calls ``on_failure`` with the run's ``Ignore``; the wrapper set
    on the instance (as the delivery policy's are) sends ``task-revoked`` first.
    """
    on_success, on_failure = request.on_success, request.on_failure

    def succeeded(result: Any, **kwargs: Any) -> Any:
        if not result[0]:  # it finished ((failed, retval, runtime)), cancelled or not
            REGISTRY.forget_arrival(request.id)
        return on_success(result, **kwargs)

    def revoked_or_failed(exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # Celery's ExceptionWithTraceback
        if isinstance(exc, RunRevoked):
            _announce(request, hostname, exc)
        else:
            REGISTRY.forget_arrival(request.id)
        return on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    replace_request_callbacks(request, succeeded, revoked_or_failed)


def _announce(request: Any, hostname: str, exc: RunRevoked) -> None:
    with REGISTRY.lock:
        arrived = REGISTRY.arrived.pop(request.id, None)
        # A run interrupted in its thread says "terminated ..."; the event says why it was cancelled.
        reason = REGISTRY.cancelled.get(request.id, exc.reason) if exc.terminated else exc.reason
    if not exc.terminated:
        latency = time.monotonic() - arrived if arrived is not None else None
        _moments.seen(hostname, request, reason, latency)
    request.send_event("task-revoked", terminated=exc.terminated, signum=None, expired=False, reason=reason)


def announce_lost(worker: Any, task_id: str, reason: str, outcome: Outcome | None = None) -> None:
    """Send the event of a task of a lost worker that ``worker`` failed because ``reason``
    (``outcome``'s, :func:`~girder_worker._outcome.of_lost` of ``reason`` unless given: ``task-failed``).

    Its fields are those of Celery's own ``task-failed``: the exception's repr, no traceback.
    """
    event = (outcome if outcome is not None else of_lost(reason)).event
    fields = {"uuid": task_id, "exception": repr(TaskLost(reason)), "traceback": ""}
    dispatcher = event_dispatcher(getattr(worker, "consumer", None))
    if dispatcher is not None:
        # It serialises its publishing under its own lock; this runs in the lease thread.
        dispatcher.send(event, **fields)
    elif worker.task_events:  # at start, before the consumer connected: the worker's setting
        with worker.app.events.default_dispatcher(hostname=worker.hostname) as once:
            once.send(event, **fields)

"""The moments of a cancellation and of a loss, as Celery signals, logged in one place.

Celery's own signals say when a task was received, started, revoked or failed. What
girder-worker adds between them has no Celery signal, so it gets one here, sent in
the worker's main process whatever the pool (by :func:`received`, :func:`seen`,
which also log the moment, :func:`terminated` and :func:`lost`, whose callers log it):

=========================  ==============================================================
signal                     sent when (keyword arguments besides ``sender``, the hostname)
=========================  ==============================================================
``cancel_received``        a cancel for a task running or reserved here arrived
                           (``task_id``, ``task_name``, ``reason``, ``running``)
``cancel_seen``            a cancelled run stopped on its own (``task_id``, ``task_name``,
                           ``reason``, ``latency``: seconds since the cancel arrived, or
                           None when it arrived elsewhere, e.g. through Girder)
``task_terminated``        a cancelled run past its grace period, or a run past its last
                           time limit, was terminated (``task_id``, ``task_name``,
                           ``reason``: the cancel's, or which time limit)
``task_lost``              a run was lost with its worker or pool process (``task_id``,
                           ``task_name``, ``reason``, ``delivered_again``)
=========================  ==============================================================

Connect to them as to Celery's::

    from girder_worker.cancellation._moments import cancel_seen

    @cancel_seen.connect
    def count(sender=None, task_name=None, latency=None, **kwargs):
        ...
"""

from __future__ import annotations

import logging
from typing import Any

from celery.utils.dispatch import Signal

__all__ = ["cancel_received", "cancel_seen", "received", "seen", "task_lost", "task_terminated"]

logger = logging.getLogger("girder_worker.cancel")

cancel_received = Signal(name="girder_worker.cancel_received")
cancel_seen = Signal(name="girder_worker.cancel_seen")
task_terminated = Signal(name="girder_worker.task_terminated")
task_lost = Signal(name="girder_worker.task_lost")


def received(hostname: str, request: Any, reason: str, running: bool, grace: float | None) -> None:
    """A cancel arrived for ``request``, which runs here (``running``) or waits here to run."""
    if not running:
        then = "it will not start"
    elif grace is None:
        then = "it runs on until it stops (its cancel grace period is 'never')"
    elif grace == 0:
        then = "it is terminated now"
    else:
        then = f"it has {grace:g} s to stop before it is terminated"
    logger.info("cancel of task %s[%s] arrived (%s): %s", request.name, request.id, reason, then)
    cancel_received.send(sender=hostname, task_id=request.id, task_name=request.name, reason=reason, running=running)


def seen(hostname: str, request: Any, reason: str, latency: float | None) -> None:
    """``request``'s run saw its cancel and stopped."""
    after = f", {latency:.3f} s after the cancel arrived" if latency is not None else ""
    logger.info("task %s[%s] saw its cancel (%s) and stopped%s", request.name, request.id, reason, after)
    cancel_seen.send(sender=hostname, task_id=request.id, task_name=request.name, reason=reason, latency=latency)


def terminated(hostname: str, task_id: str, task_name: str, reason: str) -> None:
    """A run was terminated (the caller logs how)."""
    task_terminated.send(sender=hostname, task_id=task_id, task_name=task_name, reason=reason)


def lost(hostname: str, task_id: str, task_name: str, reason: str, delivered_again: bool) -> None:
    """A run was lost with its worker or pool process (the caller logs what follows)."""
    task_lost.send(
        sender=hostname, task_id=task_id, task_name=task_name, reason=reason, delivered_again=delivered_again
    )

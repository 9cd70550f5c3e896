"""A solo worker's acknowledgements: written when a run ends, or once it has run a while.

The solo pool runs a task inside the event loop's turn. Celery hands a message's
acknowledgement to the loop (``call_soon``), so a solo worker's message stayed
unacknowledged for the whole run: long enough for RabbitMQ's ``consumer_timeout``
(30 minutes) to close the channel, or for Redis's ``visibility_timeout`` (an hour)
to deliver the task again. Writing it when the run starts fixed that, at a price
paid by every task: on Redis a round trip before the task's body began; on
RabbitMQ, with fair dispatch, a ``basic.cancel`` of the task consumer before each
run and a ``basic.consume`` after it, which the next message waited for.

Here a run's acknowledgement is held while the run is short, and written:

* when the run ends, by the event loop's thread, before anything else of the loop
  touches the connection (on RabbitMQ, with fair dispatch's prefetch count of 1,
  that is what lets the next message come; no consumer is cancelled);
* or, if the run is still going after :data:`HOLD_SECONDS` (found by a check every
  half hold, so within one and a half), by the worker's timer thread: first what
  must come before it (fair dispatch on RabbitMQ cancels the task consumer, so that
  the broker sends nothing more to a busy worker), then the acknowledgement itself.
  That check is one timer entry for the worker, not one per run: a run costs the
  timer thread nothing.

The timer thread writes on the consumer's connection while the loop's thread is
inside the run, where nothing of the loop writes on it. One lock makes that
exclusive: the timer thread writes only under it and only while the run has not
ended, and the loop's thread marks the run ended under it before it goes on
(:meth:`SoloAcks.end`), so it waits for a write in progress to finish.

A worker lost within the first :data:`HOLD_SECONDS` of a run leaves its message
unacknowledged, and the broker delivers it again: the run's lease makes that
delivery a duplicate, dropped (docs/delivery.rst), as for a prefork worker's held
acknowledgement (:mod:`._dispatch`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .._celery_internals import chains_acknowledgement, swap_acknowledgement

__all__ = ["HOLD_SECONDS", "HeldAcknowledgement", "SoloAcks"]

logger = logging.getLogger("girder_worker.worker")

#: How long a solo run's acknowledgement is held back before the timer thread writes it.
HOLD_SECONDS = 1.0


class HeldAcknowledgement:
    """A request's acknowledgement, held back: Celery's ask for it is noted, and it is
    written (or handed back to Celery) when the hold ends.

    Celery asks for it when the run starts (``Request.acknowledge``). Fair dispatch's
    hold of a full prefork worker (:mod:`._dispatch`) and a solo run's hold here are both one.
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        self.wanted: tuple[Any, Any] | None = None
        #: Celery's own acknowledgement of the request, handed back when the hold ends.
        self.acknowledge = swap_acknowledgement(request, self._want)

    def _want(self, logger: Any, errors: Any) -> None:
        self.wanted = (logger, errors)

    def write(self) -> None:
        """Write the acknowledgement Celery asked for, here and now; nothing if it has not asked."""
        if self.wanted is not None:
            self.request.message.ack_log_error(*self.wanted)

    def let_go(self, *, write: bool = True) -> None:
        """End the hold: the request's acknowledgement is Celery's again; write the one it
        asked for meanwhile (if ``write``)."""
        swap_acknowledgement(self.request, self.acknowledge)
        if write:
            self.write()


class _Run(HeldAcknowledgement):
    """One solo run whose acknowledgement is held, and how far it got."""

    def __init__(self, request: Any) -> None:
        super().__init__(request)
        self.started = time.monotonic()
        self.ended = False
        self.acked = False


class SoloAcks:
    """Hold each solo run's acknowledgement until the run ends or :data:`HOLD_SECONDS` pass.

    ``timer`` has ``at(when, function, *args)`` (the worker's time-limit timer);
    ``consumer`` is the worker's Celery consumer.
    :attr:`before_early_ack` holds functions the timer thread calls, under the lock,
    before it writes an acknowledgement of a run in progress.
    """

    def __init__(self, timer: Any, consumer: Any, hold_seconds: float = HOLD_SECONDS) -> None:
        self.timer = timer
        self.consumer = consumer
        self.hold_seconds = hold_seconds
        self.lock = threading.Lock()
        self.before_early_ack: list[Callable[[], None]] = []
        self._run: _Run | None = None
        self._checking = False

    def holds(self, request: Any) -> bool:
        """Whether :meth:`begin` holds ``request``'s acknowledgement.

        Not an ``acks_late`` task's, written when it ends by definition, nor one that
        Celery chains its prefetch restoration to after a reconnection: Celery's way.
        """
        return not request.task.acks_late and not chains_acknowledgement(self.consumer)

    def begin(self, request: Any) -> None:
        """The loop's thread, as ``request`` goes to the pool: hold its acknowledgement."""
        if not self.holds(request):
            return
        self._run = _Run(request)
        if not self._checking:
            self._checking = True
            self.timer.at(time.monotonic() + self.hold_seconds / 2, self._check)

    def end(self) -> None:
        """The loop's thread, right after the run: write its acknowledgement unless the timer did."""
        run, self._run = self._run, None
        if run is None:
            return
        with self.lock:
            run.ended = True
        run.let_go(write=not run.acked)

    def _check(self) -> None:
        """The timer thread, every half hold: acknowledge the run in progress if it ran long."""
        try:
            run = self._run
            if run is not None and time.monotonic() - run.started >= self.hold_seconds:
                self._ran_long(run)
        finally:
            self.timer.at(time.monotonic() + self.hold_seconds / 2, self._check)

    def _ran_long(self, run: _Run) -> None:
        """The timer thread: the run is still going; acknowledge its message now."""
        with self.lock:
            if run.ended or run.acked or run.wanted is None:
                return
            for before in self.before_early_ack:
                try:
                    before()
                except Exception as exc:  # a connection lost meanwhile: the loop reconnects after the run
                    logger.warning(
                        "before acknowledging a long task's message, %s failed: %s",
                        getattr(before, "__qualname__", before),
                        exc,
                    )
            run.acked = True
            run.write()

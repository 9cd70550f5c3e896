"""Fair dispatch: a worker takes a task message only when a process is free to run it.

Celery's worker reserves up to ``concurrency x worker_prefetch_multiplier`` task
messages ahead of its free processes. With long tasks, a short task reserved by a
worker whose processes are all busy waits behind a long one while another worker,
or another process, is idle. Here the consumer fetches a message only while the
worker has fewer reserved requests than pool processes (``GIRDER_WORKER_PREFETCH``
unset or ``off``):

* On virtual transports (Redis, the embedded broker, SQS, ...) the channel's QoS
  says it cannot consume while every slot is taken, so the transport does not fetch.
* On RabbitMQ, prefetch 0 means "unlimited", so there is no prefetch count for
  "none now". The worker keeps ``prefetch_count`` at 1, so the broker never has
  two unacknowledged task messages out to this worker. When a message takes the
  last free slot, the worker holds back that message's acknowledgement (its task
  runs as usual): the one unacknowledged message keeps the broker from sending
  another, and the acknowledgement is written as soon as a slot frees, which lets
  the next message come. No round trip to the broker is added per task. A worker
  that stays full longer than :data:`HOLD_SECONDS` cancels its task consumer
  (``basic.cancel``) and then acknowledges, so no message stays unacknowledged
  for long (RabbitMQ's ``consumer_timeout`` closes the channel of a consumer that
  keeps one for 30 minutes); when a slot frees, the event loop consumes again.
  The solo pool runs a task inside the event loop, so its worker's timer thread
  ends a hold that lasts (:mod:`._solo_acks`): after its
  :data:`~._solo_acks.HOLD_SECONDS` it cancels the task consumer, then
  acknowledges; a short run's acknowledgement is written when it ends, and the
  consumer stays (it was cancelled and consumed again around every run). The
  cancel, and the consume when a slot frees, are sent without waiting for
  RabbitMQ's replies.

ETA/countdown tasks are not counted: Celery holds them aside
(``scheduled_requests``) until they are due, and raises the prefetch count for each.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from celery import bootsteps
from celery.worker.consumer.tasks import Tasks
from kombu.transport import virtual

from .._celery_internals import reserved_count, restore_can_consume, shadow_can_consume
from ._solo_acks import HeldAcknowledgement

__all__ = ["HOLD_SECONDS", "FairDispatch"]

#: How long a full worker on RabbitMQ holds back the acknowledgement of the message
#: that filled it before it cancels its task consumer instead (see the module's text).
HOLD_SECONDS = 5.0

logger = logging.getLogger("girder_worker.worker")


def _slots(c: Any) -> int:
    """How many tasks the worker runs at once (the autoscaler's maximum if it has one)."""
    return int(getattr(c.controller, "max_concurrency", None) or c.pool.num_processes or 1)


def has_free_slot(c: Any) -> bool:
    """Whether the consumer ``c`` has a process with no task reserved for it."""
    return reserved_count() < _slots(c)


def _instance_of(pool: Any, module: str) -> bool:
    """Whether ``pool`` is a ``module.TaskPool``, without importing ``module``.

    A pool of a module that is not loaded is none of its: a solo worker does not load
    the prefork pool (billiard's pool, ~0.13 s) to learn that.
    """
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(pool, loaded.TaskPool)


class _Waker:
    """Keep the event loop turning while the worker is full, for pools whose tasks end out of its sight.

    A prefork pool's results arrive on pipes the event loop watches, and the solo
    pool runs tasks in the loop itself, so the loop sees a slot free. A task of the
    threads pool ends in its own thread, and the loop might sleep on until some
    message arrives (a second or more): a short timer wakes it meanwhile.
    """

    INTERVAL = 0.01

    def __init__(self, c: Any) -> None:
        seen = _instance_of(c.pool, "celery.concurrency.prefork") or _instance_of(c.pool, "celery.concurrency.solo")
        self.hub = c.hub if c.hub is not None and not seen else None
        self.entry: Any = None

    def arm(self) -> None:
        if self.hub is not None and self.entry is None:
            self.entry = self.hub.call_repeatedly(self.INTERVAL, _nothing)

    def disarm(self) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None


def _nothing() -> None:
    """The timer's callback: waking the loop is all (its next turn checks the slots)."""


class _VirtualGate:
    """Make a virtual transport's channel fetch only while a slot is free."""

    def __init__(self, c: Any, qos: Any) -> None:
        self.c = c
        self.qos = qos
        self.waker = _Waker(c)
        self.transport_can_consume = shadow_can_consume(qos, self.can_consume)

    def can_consume(self) -> bool:
        if not has_free_slot(self.c):
            self.waker.arm()
            return False
        self.waker.disarm()
        return bool(self.transport_can_consume())

    def close(self) -> None:
        self.waker.disarm()
        restore_can_consume(self.qos)


class _Hold(HeldAcknowledgement):
    """The message that filled the worker's last free slot, unacknowledged for now.

    Celery asks for its acknowledgement when the run starts (``Request.acknowledge``);
    it is written when the hold ends, at once.
    """

    def __init__(self, request: Any, timer: Any) -> None:
        super().__init__(request)
        self.timer = timer

    def end(self, *, write: bool = True) -> None:
        """Let go: write the acknowledgement if Celery asked for it (and ``write``), else
        give the request its own acknowledgement back for when Celery asks."""
        if self.timer is not None:
            self.timer.cancel()
        # Written here, in the event loop's thread, not through Celery's acknowledgement:
        # that one only queues the write with hub.call_soon, and a hold ends in an on_tick
        # callback, after the loop took its ready queue and its poll timeout; the queued
        # write then waited for the next poll to return, up to a second in which RabbitMQ
        # could send nothing (the 0.5-1 s pauses of bursts on RabbitMQ).
        self.let_go(write=write)


def _without_replies(channel: Any) -> Any:
    """girder-worker's RabbitMQ channel: cancel and consume without a round trip each."""
    from ._rabbitmq import consumers_without_replies  # AMQP only: not loaded by other brokers' workers

    return consumers_without_replies(channel)


class _AmqpPause:
    """Keep a full worker's RabbitMQ window shut: hold back one acknowledgement, or cancel
    the task consumer; open it again when a slot frees.

    All of it runs in the consumer's event loop thread, where every AMQP call of the
    consumer is made.
    """

    def __init__(self, c: Any) -> None:
        self.c = c
        self.paused = False
        self.waker = _Waker(c)
        # The solo pool runs a task inside the event loop, which could not end a hold meanwhile:
        # the worker's solo acknowledgements hold it instead, and pause from the timer thread.
        self.solo = _instance_of(c.pool, "celery.concurrency.solo")
        self.solo_acks = getattr(c.controller, "solo_acks", None) if self.solo else None
        if self.solo_acks is not None:
            self.solo_acks.before_early_ack.append(self.pause_for_a_long_run)
        self.hold: _Hold | None = None
        # Requests of acks_late tasks, whose messages stay unacknowledged while they run.
        self.running_late: list[Any] = []
        # At most one unacknowledged task message on the way to this worker: the
        # one whose arrival fills the last slot.
        c.qos.value = 1
        c.qos.update()
        c.on_task_message.add(self.on_reserved)
        c.hub.on_tick.add(self.maybe_resume)

    def on_reserved(self, request: Any) -> None:
        # Called by Celery's strategy after the request is reserved and before its
        # message is acknowledged (the acknowledgement goes through the event loop).
        late = request.task.acks_late
        if not self.paused and self.hold is None and not has_free_slot(self.c):
            if self.solo_acks is not None and self.solo_acks.holds(request):
                pass  # its acknowledgement waits for the run's end, or pause_for_a_long_run
            elif not self.solo and not late:
                self.hold = _Hold(request, self.c.hub.call_later(HOLD_SECONDS, self.held_too_long))
                self.waker.arm()
            else:
                self.pause()
        if late:
            # Its message stays unacknowledged until it ends: without one more in the
            # prefetch count, no other message could come while it runs.
            self.running_late.append(request)
            self.c.qos.increment_eventually()

    def pause(self) -> None:
        self.paused = True
        with _without_replies(self.c.task_consumer.channel):
            self.c.task_consumer.cancel()
        self.waker.arm()

    def pause_for_a_long_run(self) -> None:
        """The timer thread, a solo run going on past its hold: cancel the task consumer
        before the run's acknowledgement is written (the event loop's thread is in the run)."""
        if not self.paused:
            self.pause()

    def held_too_long(self) -> None:
        """Still full after HOLD_SECONDS: cancel the consumer, then acknowledge."""
        if self.hold is not None:
            self.hold.timer = None  # it is this call
            if not self.paused and not has_free_slot(self.c):
                self.pause()
            self.end_hold()

    def end_hold(self, *, write: bool = True) -> None:
        hold, self.hold = self.hold, None
        if hold is not None:
            hold.end(write=write)

    def maybe_resume(self) -> None:
        if self.running_late:
            running = [r for r in self.running_late if not r.acknowledged]
            if len(running) < len(self.running_late):
                self.c.qos.decrement_eventually(len(self.running_late) - len(running))
                self.running_late = running
        if (self.hold is not None or self.paused) and has_free_slot(self.c):
            self.waker.disarm()
            self.end_hold()
            if self.paused:
                self.paused = False
                with _without_replies(self.c.task_consumer.channel):
                    self.c.task_consumer.consume()

    def close(self) -> None:
        self.waker.disarm()
        # A message whose acknowledgement is due is acknowledged while its channel is open;
        # otherwise the broker delivers it again (the lease drops the duplicate).
        hold = self.hold
        self.end_hold(write=hold is not None and bool(getattr(hold.request.message.channel, "is_open", False)))
        self.c.on_task_message.discard(self.on_reserved)
        self.c.hub.on_tick.discard(self.maybe_resume)
        if self.solo_acks is not None:
            with contextlib.suppress(ValueError):
                self.solo_acks.before_early_ack.remove(self.pause_for_a_long_run)


class FairDispatch(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: fetch a task message only for a free process.

    Enabled unless ``GIRDER_WORKER_PREFETCH`` sets a prefetch multiplier. Added to
    the app's consumer blueprint by :func:`girder_worker._app.create_app`.
    """

    label = "Fair dispatch"
    requires = (Tasks,)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self.gate: _VirtualGate | _AmqpPause | None = None
        self.announced = False
        super().__init__(c, **kwargs)

    def include_if(self, c: Any) -> bool:
        config = getattr(c.app, "girder_worker_config", None)
        return config is not None and config.prefetch_multiplier is None

    def start(self, c: Any) -> None:
        transport = c.connection.transport
        qos = getattr(c.task_consumer.channel, "qos", None)
        if isinstance(qos, virtual.QoS):
            self.gate = _VirtualGate(c, qos)
        elif transport.driver_type == "amqp" and c.hub is not None:
            vanishing = sorted(q.name for q in c.task_consumer.queues if q.auto_delete)
            if vanishing:
                # RabbitMQ deletes such a queue, messages and all, when its last consumer cancels.
                self.refuse(f"queue(s) {', '.join(vanishing)} are auto_delete, which pausing would delete")
                return
            self.gate = _AmqpPause(c)
        else:
            self.refuse(
                f"the {transport.driver_type} transport with this pool cannot pause (it needs a virtual "
                "transport, or RabbitMQ with the event loop of the prefork, solo or threads pool)"
            )
            return
        if not self.announced:
            logger.info(
                "fair dispatch: this worker takes a task only when one of its %d process(es) is free "
                "(GIRDER_WORKER_PREFETCH=off)",
                _slots(c),
            )
            self.announced = True

    def refuse(self, why: str) -> None:
        if not self.announced:
            logger.warning(
                "fair dispatch is off on this worker: %s; it prefetches tasks as Celery does "
                "(set GIRDER_WORKER_PREFETCH to the number of tasks per process to reserve, and this line goes)",
                why,
            )
            self.announced = True

    def stop(self, c: Any) -> None:
        if self.gate is not None:
            self.gate.close()
            self.gate = None

    def shutdown(self, c: Any) -> None:
        self.stop(c)

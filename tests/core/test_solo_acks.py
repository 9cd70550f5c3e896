"""A solo worker's acknowledgements: written when the run ends, or by the timer thread once it ran long.

A real Celery request made from a real kombu message (see ``test_fair_dispatch_hold``),
the worker's real timer thread, and a channel that records the acknowledgements it
is asked to write.
"""

from __future__ import annotations

import threading
import time

from girder_worker.broker._solo_acks import SoloAcks

from ..conftest import wait_for
from .test_fair_dispatch_hold import held, one_turn_polls  # noqa: F401  (held: the fixture)
from .test_time_limit_timer import timer  # noqa: F401  (the fixture)


class Consumer:
    """What SoloAcks reads of Celery's consumer: no reconnection in progress."""

    restart_count = 0
    _maximum_prefetch_restored = True


def test_a_short_run_is_acknowledged_once_when_it_ends_not_when_it_starts(held, timer):  # noqa: F811
    _, channel, request = held
    acks = SoloAcks(timer, Consumer(), hold_seconds=30)

    acks.begin(request)
    request.acknowledge()  # the run starts: Celery asks for the acknowledgement
    assert channel.acks == []

    acks.end()  # the run ended: the loop's thread writes it at once
    assert channel.acks == [7]
    request.acknowledge()
    assert channel.acks == [7]


def test_runs_add_nothing_to_the_timer_but_its_one_check(held, timer):  # noqa: F811
    _, channel, request = held
    acks = SoloAcks(timer, Consumer(), hold_seconds=30)

    for run in range(100):
        acks.begin(request)
        if run == 0:
            request.acknowledge()  # (one message: kombu acknowledges a message once)
        acks.end()

    assert timer.pending() == 1  # the check of the run in progress, every half hold
    assert channel.acks == [7]


def test_a_long_run_is_acknowledged_by_the_timer_thread_after_what_must_come_first(held, timer):  # noqa: F811
    _, channel, request = held
    acks = SoloAcks(timer, Consumer(), hold_seconds=0.05)
    order: list[str] = []
    acks.before_early_ack.append(lambda: order.append(f"before, acks {channel.acks}"))

    acks.begin(request)
    request.acknowledge()
    wait_for(lambda: channel.acks == [7], timeout=5, what="the timer thread's acknowledgement")
    assert order == ["before, acks []"]  # e.g. fair dispatch's consumer cancel, then the acknowledgement

    acks.end()  # the run ends later: nothing is written twice
    assert channel.acks == [7]


def test_the_end_of_a_run_waits_for_an_acknowledgement_being_written(held, timer):  # noqa: F811
    _, channel, request = held
    acks = SoloAcks(timer, Consumer(), hold_seconds=0.01)
    writing, finish = threading.Event(), threading.Event()

    def slow_cancel() -> None:  # the timer thread, in the middle of its writes
        writing.set()
        finish.wait(5)

    acks.before_early_ack.append(slow_cancel)
    acks.begin(request)
    request.acknowledge()
    assert writing.wait(5)

    ended = threading.Thread(target=acks.end)
    ended.start()
    ended.join(0.2)
    assert ended.is_alive(), "the loop's thread went on while the timer thread wrote on its connection"
    finish.set()
    ended.join(5)
    assert not ended.is_alive()
    assert channel.acks == [7]


def test_a_run_that_ends_before_its_hold_never_reaches_the_timer_thread(held, timer):  # noqa: F811
    _, channel, request = held
    acks = SoloAcks(timer, Consumer(), hold_seconds=0.05)
    called: list[str] = []
    acks.before_early_ack.append(lambda: called.append("before"))

    acks.begin(request)
    request.acknowledge()
    acks.end()
    time.sleep(0.2)

    assert called == []
    assert channel.acks == [7]


def test_an_acks_late_run_and_a_run_after_a_reconnection_are_left_to_celery(held, timer):  # noqa: F811
    hub, channel, request = held
    reconnected = Consumer()
    reconnected.restart_count, reconnected._maximum_prefetch_restored = 1, False
    request.task.acks_late = True
    acks = SoloAcks(timer, Consumer(), hold_seconds=0.01)
    assert not acks.holds(request)
    request.task.acks_late = False
    assert acks.holds(request)
    assert not SoloAcks(timer, reconnected).holds(request)

    request.task.acks_late = True
    acks.begin(request)
    request.acknowledge()  # Celery's own way: queued for the event loop
    time.sleep(0.1)
    acks.end()
    assert channel.acks == []
    loop, polled_with = one_turn_polls(hub, channel)
    next(loop)
    assert polled_with == [[7]]  # written by the event loop, as Celery does

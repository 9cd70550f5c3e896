"""The time limits' timer thread: deadlines fire in order, and a later one does not wake it."""

from __future__ import annotations

import threading
import time

import pytest

from girder_worker.cancellation._timelimit import _Timer


@pytest.fixture
def timer():
    """A started timer, stopped after the test."""
    started = _Timer()
    started.start()
    yield started
    started.stop()


def test_deadlines_fire_in_order_even_when_an_earlier_one_comes_after_a_later_one(timer):
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    timer.at(now + 60, fired.append, "late")  # the thread now sleeps until this one
    timer.at(now + 0.05, fired.append, "early")  # earlier: it must wake and take this first
    timer.at(now + 0.1, lambda: (fired.append("next"), done.set()))
    assert done.wait(5)
    assert fired == ["early", "next"]


def test_a_deadline_later_than_the_earliest_does_not_wake_the_thread():
    timer = _Timer()
    notified: list[bool] = []
    notify = timer._cond.notify

    def counting_notify(n: int = 1) -> None:
        notified.append(True)
        notify(n)

    timer._cond.notify = counting_notify  # type: ignore[method-assign]
    now = time.monotonic()
    timer.at(now + 10, print)
    timer.at(now + 20, print)  # after the earliest: nothing to wake for
    timer.at(now + 30, print)
    timer.at(now + 5, print)  # the new earliest
    assert len(notified) == 2


def test_a_cancelled_call_is_not_made_and_a_made_one_cannot_be_cancelled(timer):
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    kept = timer.at(now + 0.05, fired.append, "kept")
    dropped = timer.at(now + 0.05, fired.append, "dropped")
    timer.at(now + 0.1, done.set)
    timer.cancel(dropped)
    assert timer.pending() == 2
    assert done.wait(5)
    timer.cancel(kept)  # made already: nothing to cancel
    assert fired == ["kept"]
    assert timer.pending() == 0


def test_cancelled_calls_do_not_pile_up_until_their_deadlines():
    # A run that ends cancels its deadlines; a worker with a long time limit and many short
    # tasks must not keep every finished run for as long as the limit.
    timer = _Timer()
    now = time.monotonic()
    for n in range(10_000):
        timer.cancel(timer.at(now + 300 + n, print, n))
    live = timer.at(now + 600, print, "a run in progress")
    assert timer.pending() == 1
    assert len(timer._heap) < 2 * _Timer.REBUILD_AT
    assert live in timer._heap

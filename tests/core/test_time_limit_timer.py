"""The time limits' timer thread: deadlines fire in order, and a later one does not wake it."""

from __future__ import annotations

import threading
import time

from girder_worker.cancellation._timelimit import _Timer


def test_deadlines_fire_in_order_even_when_an_earlier_one_comes_after_a_later_one():
    timer = _Timer()
    timer.start()
    fired: list[str] = []
    done = threading.Event()
    try:
        now = time.monotonic()
        timer.at(now + 60, fired.append, "late")  # the thread now sleeps until this one
        timer.at(now + 0.05, fired.append, "early")  # earlier: it must wake and take this first
        timer.at(now + 0.1, lambda: (fired.append("next"), done.set()))
        assert done.wait(5)
        assert fired == ["early", "next"]
    finally:
        timer.stop()


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

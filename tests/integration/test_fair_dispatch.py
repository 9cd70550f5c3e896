"""Fair dispatch with real workers: a short task never waits behind a running long one.

Each test prints how long the short tasks took after they were sent (run with -s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from ..conftest import wait_for
from .unacked import rabbitmq_unacknowledged

TIMED = "gwtest.dispatch.timed"
SHORTS = 4


def start_long(app, queue, marker, seconds):
    """Send the long task and wait until a worker has started it."""
    result = app.send_task(TIMED, args=[seconds], kwargs={"marker": str(marker)}, queue=queue)
    wait_for(marker.exists, what="the long task to start")
    return result


def send_shorts(app, queue):
    return [app.send_task(TIMED, args=[0.2], queue=queue) for _ in range(SHORTS)]


def received(worker, results):
    """The ids of the tasks among ``results`` that ``worker`` has received (reserved)."""
    return [r.id for r in results if f"[{r.id}] received" in worker.log]


def start_workers(start_worker, env, queue, layout, pool="prefork"):
    """Start a worker for each ``{name: concurrency}`` of ``layout``, and wait for all."""
    workers = [
        start_worker(env, "-P", pool, "-c", str(c), "-Q", queue, "-n", f"{name}@%h", ready=False)
        for name, c in layout.items()
    ]
    for worker in workers:
        worker.wait_ready()
    return workers


@pytest.mark.parametrize(
    ("pool", "layout"),
    [("prefork", {"w0": 1, "w1": 1}), ("prefork", {"w0": 2}), ("threads", {"w0": 2})],
    ids=["two-workers-c1", "one-worker-c2", "one-threads-worker-c2"],
)
def test_short_tasks_run_while_a_long_one_holds_a_process(
    broker, pool, layout, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker)
    workers = start_workers(start_worker, env, unique_queue, layout, pool)
    app = queue_app(env)
    long = start_long(app, unique_queue, tmp_path / "long", seconds=120)

    sent = time.time()
    results = [r.get(timeout=30) for r in send_shorts(app, unique_queue)]

    assert not long.ready(), "the long task ended before the short ones; the test proves nothing"
    done = max(r["ended"] for r in results) - sent
    print(f"\n{broker} {pool} {layout}: {SHORTS} short tasks done {done:.2f}s after sending")
    assert "fair dispatch: this worker takes a task only when one of its" in workers[0].log


@pytest.mark.parametrize("prefetch", ["off", "4"])
def test_a_worker_that_comes_later_gets_the_short_tasks_only_with_fair_dispatch(
    broker, prefetch, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    """Worker w0 runs a long task when short ones arrive; w1 starts after them.

    With fair dispatch the short tasks wait in the broker and w1 runs them at once.
    With Celery's prefetch (GIRDER_WORKER_PREFETCH=4) w0 has reserved them, and
    they wait for the long task to end while w1 idles.
    """
    env = {**env_for(broker), "GIRDER_WORKER_PREFETCH": prefetch}
    (first,) = start_workers(start_worker, env, unique_queue, {"w0": 1})
    app = queue_app(env)
    # Awaited only where the short tasks wait for it; else long enough for w1 to start.
    long = start_long(app, unique_queue, tmp_path / "long", seconds=120 if prefetch == "off" else 8)
    sent = time.time()
    shorts = send_shorts(app, unique_queue)
    if prefetch != "off":
        wait_for(lambda: received(first, shorts), what="w0 to reserve a short task")
    start_workers(start_worker, env, unique_queue, {"w1": 1})  # after the shorts were sent

    results = [r.get(timeout=60) for r in shorts]
    done = max(r["ended"] for r in results) - sent
    print(f"\n{broker} GIRDER_WORKER_PREFETCH={prefetch}: {SHORTS} short tasks done {done:.2f}s after sending")

    if prefetch == "off":
        assert not long.ready(), "the long task ended before the short ones; the test proves nothing"
        assert {r["hostname"] for r in results} == {results[0]["hostname"]}
        assert results[0]["hostname"].startswith("w1@")
        assert received(first, shorts) == []
    else:
        ended = long.get(timeout=60)["ended"]
        waited = [r for r in results if r["started"] >= ended]
        assert waited, "with Celery's prefetch, no short task waited behind the long one"
        assert all(r["hostname"].startswith("w0@") for r in waited)
        assert "fair dispatch" not in first.log


def test_a_stopping_worker_returns_the_tasks_it_reserved_to_the_broker(
    broker, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    """With Celery's prefetch a busy worker holds tasks; a warm shutdown gives them back.

    The embedded broker's worker (no event loop) hands a held task to its pool as
    soon as a process frees, so there it may run a held task before it exits.
    """
    env = {**env_for(broker), "GIRDER_WORKER_PREFETCH": "4"}
    (first,) = start_workers(start_worker, env, unique_queue, {"w0": 1})
    app = queue_app(env)
    long = start_long(app, unique_queue, tmp_path / "long", seconds=3)
    shorts = send_shorts(app, unique_queue)
    wait_for(lambda: received(first, shorts), what="w0 to reserve a short task")

    os.kill(first.proc.pid, signal.SIGTERM)  # warm shutdown, as systemd's KillMode=mixed: the long task ends first
    first.wait_exit(timeout=30)
    assert long.get(timeout=10)["hostname"].startswith("w0@")
    start_workers(start_worker, env, unique_queue, {"w1": 1})

    held = received(first, shorts)
    results = {r.id: r.get(timeout=30) for r in shorts}
    print(f"\n{broker}: w0 held {len(held)}, which ran on {sorted(results[i]['hostname'] for i in held)}")
    if broker != "embedded":
        assert all(results[i]["hostname"].startswith("w1@") for i in held)


def test_acks_late_tasks_fill_every_process_on_rabbitmq(env_for, start_worker, queue_app, unique_queue, tmp_path):
    """Their messages stay unacknowledged while they run, yet do not hold the next one back."""
    env = env_for("rabbitmq")
    start_workers(start_worker, env, unique_queue, {"w0": 2})
    app = queue_app(env)
    markers = [tmp_path / "first", tmp_path / "second"]

    for marker in markers:
        app.send_task("gwtest.dispatch.timed_late", args=[120], kwargs={"marker": str(marker)}, queue=unique_queue)

    wait_for(lambda: all(m.exists() for m in markers), what="both acks_late tasks to run at once")


def _queue_counts(app, queue):
    """(ready messages, consumers) of ``queue`` on RabbitMQ."""
    with app.connection_for_write() as conn:
        declared = conn.default_channel.queue_declare(queue, passive=True)
        return declared.message_count, declared.consumer_count


def test_a_full_worker_on_rabbitmq_holds_one_acknowledgement_then_cancels_its_consumer(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    """A worker filled by a long task keeps the broker's window shut by not acknowledging that
    task's message at first (its consumer stays: no round trip per task); after HOLD_SECONDS it
    cancels its consumer and acknowledges, so the message is not delivered again when the
    worker dies (nor kept unacknowledged into RabbitMQ's consumer_timeout)."""
    from girder_worker.broker._dispatch import HOLD_SECONDS

    env = env_for("rabbitmq")
    (worker,) = start_workers(start_worker, env, unique_queue, {"w0": 1})
    app = queue_app(env)
    start_long(app, unique_queue, tmp_path / "long", seconds=120)
    short = app.send_task(TIMED, args=[0.2], queue=unique_queue)

    assert _queue_counts(app, unique_queue) == (1, 1), "within the hold: the consumer stays, the short task waits"
    wait_for(lambda: _queue_counts(app, unique_queue) == (1, 0), timeout=HOLD_SECONDS + 15, what="the consumer cancel")
    assert received(worker, [short]) == []
    # The acknowledgement follows the cancel: the broker counts the long task's message as
    # acknowledged, and it does not come back when the worker dies.
    wait_for(lambda: rabbitmq_unacknowledged(unique_queue) == 0, timeout=15, what="the held acknowledgement")
    worker.stop(sig=signal.SIGKILL)

    assert _queue_counts(app, unique_queue) == (1, 0), "the long task's message came back: it was not acknowledged"


def _consumer_tags(queue):
    """The tags of ``queue``'s consumers on RabbitMQ (rabbitmqctl, as root): kombu numbers each
    ``basic.consume`` of a worker anew, so a cancel and a consume again show as a new tag."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_consumers", "-q", "--no-table-headers", "queue_name", "consumer_tag"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return sorted(tag for name, tag in (line.split() for line in listed.splitlines() if line.strip()) if name == queue)


def test_a_solo_worker_on_rabbitmq_keeps_its_consumer_through_short_tasks_and_pauses_for_a_long_one(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    """A solo worker runs its task inside the event loop. It acknowledges a short task's message
    when the task ends (fair dispatch's prefetch count of 1 keeps the next one back meanwhile), so
    a burst runs through one consumer. A task still running after a second has its consumer
    cancelled, then its message acknowledged, by the worker's timer thread: a message sent
    meanwhile stays for another worker."""
    env = env_for("rabbitmq")
    (solo,) = start_workers(start_worker, env, unique_queue, {"w0": 1}, pool="solo")
    app = queue_app(env)
    before = _consumer_tags(unique_queue)

    burst = [app.send_task(TIMED, args=[0], queue=unique_queue) for _ in range(20)]
    assert {r.get(timeout=60)["hostname"].split("@")[0] for r in burst} == {"w0"}
    assert len(before) == 1
    assert _consumer_tags(unique_queue) == before, "the consumer was cancelled and made again during the burst"

    long = start_long(app, unique_queue, tmp_path / "long", seconds=120)
    short = app.send_task(TIMED, args=[0.2], queue=unique_queue)
    wait_for(lambda: _queue_counts(app, unique_queue) == (1, 0), timeout=15, what="the short task to wait in the queue")
    wait_for(lambda: rabbitmq_unacknowledged(unique_queue) == 0, timeout=15, what="the long task's acknowledgement")
    start_workers(start_worker, env, unique_queue, {"w1": 1})

    assert short.get(timeout=30)["hostname"].startswith("w1@")
    assert received(solo, [short]) == []
    assert not long.ready()

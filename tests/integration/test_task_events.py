"""Celery's task events tell the truth about cancelled and lost tasks.

A real events receiver (``app.events.Receiver``, what ``celery events`` and Flower
use) listens while real workers run, get cancelled, are terminated, expire and die;
each test asserts the sequence of events a monitor sees for its task.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from girder_worker import cancel

from ..conftest import wait_for
from .test_delivery import starts


class Events:
    """Every task event on the broker, collected by a thread running Celery's receiver."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.app.connection_for_read() as conn:
            self._receiver = self.app.events.Receiver(conn, handlers={"*": self.events.append})
            self.ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> Events:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def of(self, task_id: str) -> list[str]:
        """The types of the events of ``task_id`` so far, in order."""
        return [e["type"] for e in list(self.events) if e.get("uuid") == task_id]

    def wait_for(self, task_id: str, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        wait_for(lambda: kind in self.of(task_id), timeout, f"{kind} of {task_id} (seen: {self.of(task_id)})")
        return next(e for e in list(self.events) if e.get("uuid") == task_id and e["type"] == kind)


@pytest.fixture
def events() -> Iterator[Any]:
    receivers: list[Events] = []

    def start(app: Any) -> Events:
        receiver = Events(app).start()
        receivers.append(receiver)
        receiver.ready.wait(10)
        time.sleep(1.0)  # its queue declared before any worker sends
        return receiver

    yield start
    for receiver in receivers:
        receiver.stop()


def _online(seen: Events, name: str) -> None:
    """Wait for the worker-online event of worker ``name``: the receiver gets the worker's events."""
    hostname = f"{name}@{os.uname().nodename}"
    wait_for(
        lambda: any(e["type"] == "worker-online" and e.get("hostname") == hostname for e in list(seen.events)),
        what=f"worker-online of {hostname}",
    )


def _worker(start_worker: Any, env: dict[str, str], queue: str, pool: str, seen: Events) -> Any:
    worker = start_worker(env, "-E", "-P", pool, "-c", "1", "-Q", queue, "-n", f"{queue}@%h")
    _online(seen, queue)
    return worker


def _started(app: Any, name: str, queue: str, marker: Any, *args: Any) -> Any:
    result = app.send_task(name, args=[str(marker), *args], queue=queue)
    wait_for(marker.exists, what=f"{name} to start")
    return result


BROKERS = ("redis", "rabbitmq", "embedded")


@pytest.mark.parametrize("broker", BROKERS)
def test_a_cooperative_cancel_is_announced_revoked_with_its_reason(
    broker, env_for, start_worker, queue_app, unique_queue, events, tmp_path
):
    env = env_for(broker)
    app = queue_app(env)
    seen = events(app)
    worker = _worker(start_worker, env, unique_queue, "threads", seen)
    result = _started(app, "gwtest.cooperative", unique_queue, tmp_path / "marker")

    cancel(result, app=app, reason="stopped by the operator")

    revoked = seen.wait_for(result.id, "task-revoked")
    assert seen.of(result.id) == ["task-received", "task-started", "task-revoked"]
    assert revoked["terminated"] is False
    assert revoked["expired"] is False
    assert revoked["reason"] == "stopped by the operator"
    assert result.state == "REVOKED"
    worker.wait_for_log(
        rf"cancel of task gwtest.cooperative\[{result.id}\] arrived \(stopped by the operator\): "
        r"it has 30 s to stop before it is terminated"
    )
    worker.wait_for_log(
        rf"task gwtest.cooperative\[{result.id}\] saw its cancel \(stopped by the operator\) and stopped"
    )
    worker.wait_for_log(rf"Task gwtest.cooperative\[{result.id}\] revoked: stopped by the operator")
    assert f"{result.id}] ignored" not in worker.log


@pytest.mark.parametrize(("broker", "pool"), [("redis", "threads"), ("redis", "prefork"), ("rabbitmq", "solo")])
def test_a_task_terminated_after_its_grace_period_is_announced_terminated(
    broker, pool, env_for, start_worker, queue_app, unique_queue, events, tmp_path
):
    env = env_for(broker)
    app = queue_app(env)
    seen = events(app)
    _worker(start_worker, env, unique_queue, pool, seen)
    # Its grace period is 1 s. A thread is interrupted between two Python instructions: busy, not asleep.
    result = _started(app, "gwtest.stubborn", unique_queue, tmp_path / "marker", None, pool == "threads")

    app.control.revoke(result.id)

    revoked = seen.wait_for(result.id, "task-revoked")
    assert seen.of(result.id) == ["task-received", "task-started", "task-revoked"]
    assert revoked["terminated"] is True
    assert revoked["reason"] == "cancelled"
    # prefork: the pool process is killed; solo and threads: the run's thread is interrupted.
    assert revoked["signum"] == (signal.SIGKILL if pool == "prefork" else None)
    wait_for(lambda: result.state == "REVOKED", what="REVOKED")


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_a_task_cancelled_before_it_starts_and_an_expired_one_are_announced_revoked(
    broker, env_for, start_worker, queue_app, unique_queue, events, tmp_path
):
    env = env_for(broker)
    app = queue_app(env)
    seen = events(app)
    _worker(start_worker, env, unique_queue, "solo", seen)
    busy = _started(app, "gwtest.cooperative", unique_queue, tmp_path / "marker")  # holds the only slot
    waiting = app.send_task("gwtest.add", args=[1, 2], queue=unique_queue)
    expired = app.send_task(
        "gwtest.add", args=[1, 2], queue=unique_queue, expires=datetime.now(timezone.utc) - timedelta(seconds=1)
    )

    cancel(waiting, app=app, reason="not needed")
    cancel(busy, app=app)

    revoked = seen.wait_for(waiting.id, "task-revoked")
    assert "task-started" not in seen.of(waiting.id)
    assert revoked["terminated"] is False
    assert revoked["expired"] is False
    assert revoked["reason"] == "not needed"
    gone = seen.wait_for(expired.id, "task-revoked")
    assert "task-started" not in seen.of(expired.id)
    assert gone["expired"] is True
    assert seen.wait_for(busy.id, "task-revoked")["reason"] == "cancelled"


def test_a_task_lost_with_its_pool_process_is_announced_failed(
    env_for, start_worker, queue_app, unique_queue, events, tmp_path
):
    env = {**env_for("redis"), "GIRDER_WORKER_DELIVERY": "at-most-once"}
    app = queue_app(env)
    seen = events(app)
    _worker(start_worker, env, unique_queue, "prefork", seen)
    log = tmp_path / "runs.txt"
    result = app.send_task("gwtest.delivery.record", args=[str(log), 30.0], queue=unique_queue)
    pid = wait_for(lambda: starts(log, result.id), what="the run")[0]  # type: ignore[index]

    os.kill(pid, signal.SIGKILL)

    failed = seen.wait_for(result.id, "task-failed")
    assert seen.of(result.id) == ["task-received", "task-started", "task-failed"]
    assert "TaskLost" in failed["exception"]
    assert "worker lost" in failed["exception"]


def test_a_task_whose_whole_worker_died_is_announced_failed_by_the_next_worker(
    env_for, start_worker, queue_app, unique_queue, events, tmp_path
):
    # A Redis database of its own: any worker on the lease store's database may take over
    # the lapsed lease, and workers of other tests share database 0.
    env_for("redis")
    env = {
        "GIRDER_WORKER_BROKER": "redis://127.0.0.1:6379/7",
        "GIRDER_WORKER_DELIVERY": "at-most-once",
        "GIRDER_WORKER_LEASE_SECONDS": "2",
    }
    app = queue_app(env)
    seen = events(app)
    # Not solo: a solo worker sends a task's events when the task ends (see docs/monitoring.rst).
    first = start_worker(env, "-E", "-P", "threads", "-Q", unique_queue, "-n", f"first-{unique_queue}@%h")
    _online(seen, f"first-{unique_queue}")
    log = tmp_path / "runs.txt"
    result = app.send_task("gwtest.delivery.record", args=[str(log), 30.0], queue=unique_queue)
    wait_for(lambda: starts(log, result.id), what="the run")
    seen.wait_for(result.id, "task-started")

    first.stop(sig=signal.SIGKILL)
    start_worker(env, "-E", "-P", "solo", "-Q", unique_queue, "-n", f"second-{unique_queue}@%h")

    failed = seen.wait_for(result.id, "task-failed", timeout=60)
    assert failed["hostname"] == f"second-{unique_queue}@{os.uname().nodename}"
    assert "worker lost once (at-most-once)" in failed["exception"]


def test_no_task_events_without_events_enabled(env_for, start_worker, queue_app, unique_queue, events, tmp_path):
    env = env_for("redis")
    app = queue_app(env)
    seen = events(app)
    start_worker(env, "-P", "threads", "-Q", unique_queue, "-n", f"{unique_queue}@%h")
    result = _started(app, "gwtest.cooperative", unique_queue, tmp_path / "marker")

    cancel(result, app=app)

    wait_for(lambda: result.state == "REVOKED", what="REVOKED")
    time.sleep(1.0)
    assert seen.of(result.id) == []

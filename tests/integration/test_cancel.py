"""Cancellation with real workers: every pool, every broker, durable, escalated."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psutil
import pytest
from celery.exceptions import TaskRevokedError

from girder_worker import cancel

from ..conftest import wait_for

POOLS = ("prefork", "threads", "solo")


def wait_state(result, state, timeout=30.0):
    return wait_for(lambda: result.state == state, timeout, f"task {result.id} to be {state} (is {result.state})")


def send_and_wait_started(app, name, queue, marker, *args, **kwargs):
    """Send a test task that writes ``marker`` when it starts, and wait until it has."""
    result = app.send_task(name, args=[str(marker), *args], kwargs=kwargs, queue=queue)
    wait_for(lambda: marker.exists(), what=f"{name} to start")
    return result


@pytest.mark.parametrize("pool", POOLS)
def test_cooperative_task_sees_the_cancel_and_ends_revoked(
    broker, pool, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker)
    start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    marker = tmp_path / "marker"
    result = send_and_wait_started(app, "gwtest.cooperative", unique_queue, marker)

    outcome = cancel(result, app=app)

    assert outcome.sent
    wait_state(result, "REVOKED")
    assert marker.read_text() == "saw cancel"
    with pytest.raises(TaskRevokedError):
        result.get(timeout=5)


@pytest.mark.parametrize("pool", POOLS)
def test_celery_revoke_and_task_cancelled_end_revoked(pool, env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = env_for("redis")
    start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    result = send_and_wait_started(app, "gwtest.raises_on_cancel", unique_queue, tmp_path / "marker")

    result.revoke()  # what Girder calls

    wait_state(result, "REVOKED")
    assert isinstance(result.result, TaskRevokedError)
    assert str(result.result) == "cancelled"


@pytest.mark.parametrize("pool", POOLS)
def test_cleanup_callback_runs_when_the_cancel_arrives(pool, env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = env_for("embedded")
    start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    cleanup = tmp_path / "cleanup"
    result = send_and_wait_started(app, "gwtest.cleanup_on_cancel", unique_queue, tmp_path / "marker", str(cleanup))
    cancel(result, app=app)
    wait_state(result, "REVOKED")
    assert cleanup.read_text() == "cleaned up"


def test_queued_task_cancelled_while_the_worker_is_busy_never_runs(
    broker, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker)
    start_worker(env, "-P", "solo", "-Q", unique_queue)
    app = queue_app(env)
    never = tmp_path / "never"
    blocker = send_and_wait_started(app, "gwtest.cooperative", unique_queue, tmp_path / "blocker")
    queued = app.send_task("gwtest.touch", args=[str(never)], queue=unique_queue)

    cancel(queued, app=app)
    cancel(blocker, app=app)

    wait_state(queued, "REVOKED")
    wait_state(blocker, "REVOKED")
    assert not never.exists()


@pytest.mark.parametrize("broker_name", ["embedded", "redis", "rabbitmq"])
def test_cancel_sent_while_no_worker_runs_takes_effect_when_one_starts(
    broker_name, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker_name)
    app = queue_app(env)
    never = tmp_path / "never"
    queued = app.send_task("gwtest.touch", args=[str(never)], queue=unique_queue)
    if broker_name == "rabbitmq":  # a queue must exist to hold the message while no worker runs
        with app.connection_for_write() as conn:
            assert conn.default_channel.queue_declare(unique_queue, passive=True).message_count == 1

    assert cancel(queued, app=app).sent

    start_worker(env, "-P", "solo", "-Q", unique_queue)
    wait_state(queued, "REVOKED")
    after = app.send_task("gwtest.add", args=[1, 1], queue=unique_queue)
    assert after.get(timeout=30) == 2  # the queued one was handled before it
    assert not never.exists()


def test_a_restarted_worker_remembers_cancellations(env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = env_for("redis")
    app = queue_app(env)
    first = start_worker(env, "-P", "solo", "-Q", unique_queue)
    first.stop()
    never = tmp_path / "never"
    queued = app.send_task("gwtest.touch", args=[str(never)], queue=unique_queue)
    app.control.revoke(queued.id)  # Celery's own call; the broadcast reaches no worker
    start_worker(env, "-P", "solo", "-Q", unique_queue)
    wait_state(queued, "REVOKED")
    assert not never.exists()


STUBBORN = [
    ("prefork", False),
    ("solo", False),
    ("threads", True),
    pytest.param(
        "threads",
        False,
        marks=pytest.mark.xfail(
            strict=True, reason="a thread blocked in time.sleep cannot be interrupted; see the docs"
        ),
    ),
]


@pytest.mark.parametrize(("pool", "busy"), STUBBORN)
def test_task_that_ignores_its_cancel_is_terminated_after_its_grace_period(
    pool, busy, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for("redis")
    worker = start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    marker, pidfile = tmp_path / "marker", tmp_path / "child.pid"
    beside = None
    if pool != "solo":
        beside = app.send_task("gwtest.sleep", args=[4], queue=unique_queue)
    stubborn = app.send_task(
        "gwtest.stubborn",
        args=[str(marker)],
        kwargs={"child_pidfile": str(pidfile) if not busy else None, "busy": busy},
        queue=unique_queue,
    )
    wait_for(lambda: marker.exists(), what="the stubborn task to start")
    started = time.monotonic()

    cancel(stubborn, app=app)

    wait_state(stubborn, "REVOKED", timeout=20)
    assert time.monotonic() - started >= 0.9  # its grace period is 1 s
    if not busy:
        child = int(pidfile.read_text())
        wait_for(
            lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie",
            timeout=10,
            what="the task's child process to be gone",
        )
    if beside is not None:
        assert beside.get(timeout=30) == 4
    assert app.send_task("gwtest.add", args=[2, 2], queue=unique_queue).get(timeout=30) == 4
    assert "did not stop within its cancel grace period: terminated" in worker.log


@pytest.mark.parametrize("pool", POOLS)
def test_cancel_racing_completion_ends_in_exactly_one_state(pool, env_for, start_worker, queue_app, unique_queue):
    env = env_for("redis")
    start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    outcomes = []
    for i in range(15):
        # Every third task runs long enough that its cancel lands while it runs (or
        # before it starts): those must end REVOKED; the others race their cancel.
        long_run = i % 3 == 0
        result = app.send_task("gwtest.work_for", args=[3.0 if long_run else 0.05], queue=unique_queue)
        time.sleep(0.03 + (i % 5) * 0.01)
        cancel(result, app=app)
        wait_for(lambda r=result: r.state in ("SUCCESS", "REVOKED"), what="a final state")
        first = result.state
        time.sleep(0.2)
        assert app.AsyncResult(result.id).state == first
        if first == "SUCCESS":
            assert result.result == "done"
        if long_run:
            assert first == "REVOKED", f"a 3 s task cancelled after {0.03 + (i % 5) * 0.01:.2f} s ended {first}"
        outcomes.append(first)
    assert set(outcomes) <= {"SUCCESS", "REVOKED"}


def test_cancelling_a_finished_task_changes_nothing_and_says_so(env_for, start_worker, queue_app, unique_queue):
    env = env_for("redis")
    start_worker(env, "-P", "solo", "-Q", unique_queue)
    app = queue_app(env)
    result = app.send_task("gwtest.add", args=[3, 4], queue=unique_queue)
    assert result.get(timeout=30) == 7

    outcome = cancel(result.id, app=app)

    assert not outcome.sent
    assert outcome.message == f"task {result.id} already finished (SUCCESS); nothing to cancel"
    assert app.AsyncResult(result.id).get(timeout=5) == 7


def test_unknown_task_id_cancel_is_recorded(env_for, queue_app):
    app = queue_app(env_for("embedded"))
    task_id = str(uuid.uuid4())
    outcome = cancel(task_id, app=app)
    assert outcome.sent
    assert (
        task_id in Path(app.backend.path.decode()).parent.joinpath("cancelled").iterdir().__next__().name
        or (Path(app.backend.path.decode()).parent / "cancelled" / task_id).exists()
    )

"""Time limits on real workers: the soft limit is a cancel with a reason, the hard one
terminates, in every pool; the run ends FAILURE and its Girder job ERROR, saying which."""

from __future__ import annotations

import re

import psutil
import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker.cancellation._store import store_for

from ..conftest import wait_for
from .girder_jobs import (
    ERROR,
    QUEUED,
    RUNNING,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    history,
    log_of,
    on_queue,
    schedule,
    wait_started,
)
from .test_cancel import POOLS, wait_state

#: gw-setuptools-plugin sets task_time_limit; tests of the worker-wide limits load this one only.
ONLY_TESTTASKS = {"GIRDER_WORKER_PLUGINS": "gwtesttasks"}
SOFT = "soft time limit (1 s) exceeded"
HARD = "hard time limit (2 s) exceeded"


def failure_of(result, timeout=30.0):
    wait_state(result, "FAILURE", timeout)
    return result.result


def gone(pid):
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("broker_name", ["embedded", "redis"])
@pytest.mark.parametrize("pool", POOLS)
def test_soft_limit_reaches_the_task_as_a_cancel_with_its_reason(
    pool, broker_name, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker_name)
    worker = start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    own, per_call = tmp_path / "own", tmp_path / "per-call"

    by_task = app.send_task("gwtest.tl_polite", args=[str(own)], queue=unique_queue)
    by_call = app.send_task("gwtest.tl_poll", args=[str(per_call)], queue=unique_queue, soft_time_limit=1)

    for result, marker in ((by_task, own), (by_call, per_call)):
        error = failure_of(result)
        assert isinstance(error, SoftTimeLimitExceeded)
        assert error.args == (SOFT,)
        assert marker.read_text() == SOFT  # what self.cancel_reason said
        assert f"[{result.id}]: {SOFT}; the task was cancelled" in worker.log
    # Not a user's cancel: nothing in the durable cancel store would stop a retry.
    assert not {by_task.id, by_call.id} & set(store_for(app).recent())


@pytest.mark.parametrize("broker_name", ["embedded", "rabbitmq"])
@pytest.mark.parametrize("pool", POOLS)
def test_a_task_that_ignores_its_soft_limit_is_terminated_at_its_hard_limit(
    pool, broker_name, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker_name)
    worker = start_worker(env, "-P", pool, "-c", "3", "-Q", unique_queue)
    app = queue_app(env)
    marker, pidfile = tmp_path / "marker", tmp_path / "child.pid"
    busy = pool == "threads"  # a thread blocked in C cannot be interrupted (see the docs)
    beside = app.send_task("gwtest.sleep", args=[3], queue=unique_queue) if pool != "solo" else None

    stubborn = app.send_task(
        "gwtest.tl_ignores",
        args=[str(marker)],
        kwargs={"child_pidfile": None if busy else str(pidfile), "busy": busy},
        queue=unique_queue,
    )
    # A hard limit alone, given by the call, to a task that has no limits of its own.
    if busy:
        hard_only = app.send_task(
            "gwtest.stubborn", args=[str(tmp_path / "m2")], kwargs={"busy": True}, queue=unique_queue, time_limit=2
        )
    else:
        hard_only = app.send_task("gwtest.sleep", args=[3600], queue=unique_queue, time_limit=2)

    for result in (stubborn, hard_only):
        error = failure_of(result)
        assert isinstance(error, TimeLimitExceeded)
        assert error.args == (HARD,)
    assert f"gwtest.tl_ignores[{stubborn.id}]: {SOFT}; the task was cancelled" in worker.log
    worker.wait_for_log(re.escape(f"gwtest.tl_ignores[{stubborn.id}]: {HARD}; terminated its"), timeout=10)
    if not busy:
        child = int(pidfile.read_text())
        wait_for(lambda: gone(child), timeout=10, what="the task's child process to be gone")
    if beside is not None:
        assert beside.get(timeout=30) == 3
    assert app.send_task("gwtest.add", args=[2, 2], queue=unique_queue).get(timeout=30) == 4


@pytest.mark.parametrize("pool", ["prefork", "threads"])  # solo: the Girder test below
def test_without_a_hard_limit_the_grace_period_ends_the_cleanup_window(
    pool, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = {**env_for("redis"), **ONLY_TESTTASKS}
    worker = start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)
    app = queue_app(env)

    lingering = app.send_task(
        "gwtest.tl_lingers", args=[str(tmp_path / "marker")], kwargs={"busy": pool == "threads"}, queue=unique_queue
    )

    error = failure_of(lingering)
    assert isinstance(error, SoftTimeLimitExceeded)
    assert error.args == (SOFT,)
    assert "it is terminated if it still runs after its cancel grace period (1 s)" in worker.log
    worker.wait_for_log(re.escape(f"gwtest.tl_lingers[{lingering.id}]: {SOFT}; terminated its"), timeout=10)


def test_check_cancelled_raises_task_cancelled_with_the_reason(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for("embedded")
    start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    marker = tmp_path / "marker"

    result = app.send_task("gwtest.tl_checks", args=[str(marker)], queue=unique_queue)

    assert isinstance(failure_of(result), SoftTimeLimitExceeded)
    assert marker.read_text() == f"TaskCancelled: {SOFT}"


@pytest.mark.parametrize("how", ["settings", "command line"])
def test_worker_wide_limits_apply_to_every_task(how, env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = {**env_for("embedded"), **ONLY_TESTTASKS}
    if how == "settings":  # set by a plugin with the upper-case names of the plugin guide
        env = {**env, "GWTEST_TASK_SOFT_TIME_LIMIT": "1", "GWTEST_TASK_TIME_LIMIT": "5"}
        options = []
    else:
        options = ["--soft-time-limit", "1", "--time-limit", "5"]
    worker = start_worker(env, "-P", "threads", "-c", "1", "-Q", unique_queue, *options)
    app = queue_app(env)
    marker = tmp_path / "marker"

    result = app.send_task("gwtest.tl_poll", args=[str(marker)], queue=unique_queue)

    assert failure_of(result).args == (SOFT,)
    assert "it is terminated at its hard time limit (5 s)" in worker.log


def test_a_soft_limit_at_or_above_the_hard_limit_is_reported_at_start(env_for, start_worker, unique_queue):
    env = {**env_for("embedded"), **ONLY_TESTTASKS, "GWTEST_TASK_SOFT_TIME_LIMIT": "60", "GWTEST_TASK_TIME_LIMIT": "30"}
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue)

    assert (
        "task_soft_time_limit (60 s) is not below task_time_limit (30 s), so no task sees its soft limit; "
        "set task_soft_time_limit lower" in worker.log
    )
    assert (
        "task gwtest.tl_backwards: its soft time limit (5 s) is not below its hard time limit (5 s), "
        "so it never sees the soft one; set soft_time_limit below time_limit" in worker.log
    )
    assert "task gwtest.tl_polite:" not in worker.log  # its own limits (1 s, 30 s) are in order


@pytest.mark.parametrize(
    ("pool", "task", "line"),
    [
        ("prefork", "gwtest.tl_ignores", f"girder-worker: {HARD}; the task was terminated"),
        ("threads", "gwtest.tl_polite", f"girder-worker: {SOFT}; the task stopped"),
        ("solo", "gwtest.tl_lingers", f"girder-worker: {SOFT}; the task was terminated"),
    ],
    ids=POOLS,
)
def test_girder_job_ends_error_and_its_log_names_the_limit(
    pool, task, line, girder, girder_queue, env_for, start_worker, tmp_path
):
    start_worker({**env_for("rabbitmq"), **ONLY_TESTTASKS}, *on_queue(girder_queue, pool, 1))
    marker = tmp_path / "marker"

    job = schedule(girder, girder_queue, task, [str(marker)])
    wait_started(marker)
    failed = girder.wait_for_status(job["_id"], ERROR, timeout=30)

    assert history(failed) == [QUEUED, RUNNING, ERROR]
    assert line + "\n" in log_of(failed)


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_a_run_that_ended_is_not_kept_until_its_time_limit(pool, env_for, start_worker, queue_app, unique_queue):
    """The worker keeps a run's deadlines while it runs only: a worker with a long limit
    and many short tasks would otherwise hold every run of the last limit period."""
    env = env_for("redis")
    start_worker(env, "-P", pool, "-c", "2", "-Q", unique_queue)
    app = queue_app(env)

    results = [app.send_task("gwtest.add", args=[n, 1], queue=unique_queue, time_limit=300) for n in range(200)]
    assert [r.get(timeout=60) for r in results] == [n + 1 for n in range(200)]
    held = app.send_task("gwtest.runs_held_for_time_limits", queue=unique_queue, time_limit=300).get(timeout=30)

    assert 1 <= held <= 2  # the run that counts (and, with threads, one that may be ending)

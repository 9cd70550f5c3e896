"""Girder schedules worker_handler jobs on RabbitMQ; our worker reports them to the
real Girder 5.0.21: status, log and progress, failures, and every way of cancelling."""

from __future__ import annotations

import pytest

from .girder_jobs import (
    CANCELED,
    CANCELING,
    ERROR,
    QUEUED,
    RUNNING,
    SUCCESS,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    history,
    log_of,
    on_queue,
    schedule,
    wait_started,
)

POOLS = ("prefork", "threads", "solo")


@pytest.mark.parametrize("pool", POOLS)
def test_success_shows_the_log_and_progress_in_girder(pool, girder, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, pool, 2))

    job = schedule(girder, girder_queue, "gwtest.report", [3])
    done = girder.wait_for_status(job["_id"], SUCCESS)

    assert history(done) == [QUEUED, RUNNING, SUCCESS]
    log = log_of(done)
    assert "line 0\nline 1\nline 2\n" in log
    assert "to stderr\n" in log
    assert "INFO girder_worker.gwtest: logged through girder_worker\n" in log
    assert done["progress"] == {"current": 3.0, "total": 3.0, "message": "done"}


def test_failure_ends_error_with_the_traceback_in_the_log(girder, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    job = schedule(girder, girder_queue, "gwtest.fail", ["it broke"])
    failed = girder.wait_for_status(job["_id"], ERROR)

    assert history(failed) == [QUEUED, RUNNING, ERROR]
    log = log_of(failed)
    assert log.startswith("Traceback (most recent call last):\n")
    assert "raise ValueError(message)\n" in log
    assert log.endswith("ValueError: it broke\n")


def test_a_progress_bar_is_collapsed_to_its_last_state(girder, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    job = schedule(girder, girder_queue, "gwtest.progress_bar", [50])
    done = girder.wait_for_status(job["_id"], SUCCESS)

    assert log_of(done) == "progress 100%\nafter the bar\n"


@pytest.mark.parametrize("pool", POOLS)
def test_cancel_in_girder_while_running_ends_canceled(pool, girder, girder_queue, env_for, start_worker, tmp_path):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, pool, 2))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.cooperative", [str(marker)])
    wait_started(marker)
    girder.wait_for_status(job["_id"], RUNNING)

    assert girder.cancel(job["_id"])["status"] == CANCELING

    cancelled = girder.wait_for_status(job["_id"], CANCELED)
    assert history(cancelled) == [QUEUED, RUNNING, CANCELING, CANCELED]
    assert marker.read_text() == "saw cancel"


def test_a_task_that_raises_after_the_cancel_ends_canceled(girder, girder_queue, env_for, start_worker, tmp_path):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "prefork", 1))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.raises_after_cancel", [str(marker)])
    wait_started(marker)
    girder.wait_for_status(job["_id"], RUNNING)

    girder.cancel(job["_id"])

    cancelled = girder.wait_for_status(job["_id"], [CANCELED, ERROR])
    assert cancelled["status"] == CANCELED
    assert "RuntimeError: cleanup failed after the cancel\n" in log_of(cancelled)


def test_cancel_while_queued_and_no_worker_runs_never_runs_the_task(
    girder, girder_queue, env_for, start_worker, tmp_path
):
    # Girder's revoke reaches no worker, and the job waits in CANCELING: the original
    # girder-worker left it there for ever. Ours finds it so when it takes the task.
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.touch", [str(marker)])
    assert girder.cancel(job["_id"])["status"] == CANCELING

    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    cancelled = girder.wait_for_status(job["_id"], CANCELED)
    assert history(cancelled) == [QUEUED, CANCELING, CANCELED]
    assert not marker.exists()


def test_a_task_ignoring_its_cancel_is_terminated_and_ends_canceled(
    girder, girder_queue, env_for, start_worker, tmp_path
):
    worker = start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "prefork", 1))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.stubborn", [str(marker)])
    wait_started(marker)
    girder.wait_for_status(job["_id"], RUNNING)

    girder.cancel(job["_id"])

    cancelled = girder.wait_for_status(job["_id"], CANCELED, timeout=30)
    assert history(cancelled) == [QUEUED, RUNNING, CANCELING, CANCELED]
    assert "was terminated" in log_of(cancelled)
    worker.wait_for_log(r"did not stop within its cancel grace period")


def test_the_api_url_of_the_worker_replaces_the_one_girder_gives(girder, girder_queue, env_for, start_worker):
    unreachable = "http://girder.invalid:9/api/v1"
    status, _ = girder.call("PUT", "system/setting", {"key": "worker.api_url", "value": unreachable})
    assert status == 200
    try:
        job = schedule(girder, girder_queue, "gwtest.report", [1])
        assert job["jobInfoSpec"]["url"].startswith(unreachable)
    finally:
        girder.call("PUT", "system/setting", {"key": "worker.api_url", "value": girder.api_url})

    start_worker({**env_for("rabbitmq"), "GIRDER_WORKER_API_URL": girder.api_url}, *on_queue(girder_queue, "solo"))

    done = girder.wait_for_status(job["_id"], SUCCESS)
    assert "line 0\n" in log_of(done)


def test_a_task_the_worker_does_not_have_ends_the_job_in_error(girder, girder_queue, env_for, start_worker):
    # Celery discards the message; the job would otherwise wait in QUEUED for ever.
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    job = schedule(girder, girder_queue, "gwtest.not_installed")

    failed = girder.wait_for_status(job["_id"], ERROR)
    assert "has no task named 'gwtest.not_installed'; is the plugin that has it installed?" in log_of(failed)

"""A cancelled or timed-out docker_run stops its container; a dead worker's containers are reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from girder_worker.docker.tasks import docker_run
from girder_worker_utils import JobStatus

from ..conftest import wait_for
from .conftest import docker_ps

pytestmark = pytest.mark.usefixtures("no_leftovers")


def running(task_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=girder_worker.task_id={task_id}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_a_cancel_stops_the_container_with_sigterm_and_ends_canceled(gw_worker, busybox):
    script = 'trap "echo got TERM; exit 0" TERM; echo started; while true; do sleep 0.1; done'
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sh", "-c", script])
    gw_worker.job(result, until=lambda job: "started" in job.log)

    gw_worker.cancel(result)

    job = gw_worker.job(result)
    assert job.status == JobStatus.CANCELED
    assert result.state == "REVOKED"
    assert "got TERM" in job.log
    assert docker_ps(f"girder_worker.task_id={result.id}") == []


@pytest.fixture
def gw_worker_env(gw_worker_env):
    return {**gw_worker_env, "GIRDER_WORKER_CANCEL_GRACE_PERIOD": "2", "GIRDER_WORKER_DELIVERY": "at-most-once"}


def test_a_container_that_ignores_sigterm_is_killed_within_the_grace_period(gw_worker, busybox):
    # sleep as the container's process 1 ignores SIGTERM.
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sleep", "300"])
    wait_for(lambda: running(result.id), what="the container to run")

    started = time.monotonic()
    gw_worker.cancel(result)

    assert gw_worker.job(result).status == JobStatus.CANCELED
    assert time.monotonic() - started < 15  # far below the 300 s it would sleep
    assert docker_ps(f"girder_worker.task_id={result.id}") == []
    assert "stopping container" in gw_worker.log


def test_a_soft_time_limit_stops_the_container(gw_worker, busybox):
    result = gw_worker.apply_async(
        docker_run, (busybox,), {"pull_image": False, "container_args": ["sleep", "300"]}, soft_time_limit=1
    )

    with pytest.raises(Exception, match="soft time limit"):
        result.get(timeout=60)
    assert docker_ps(f"girder_worker.task_id={result.id}") == []


def test_containers_of_a_killed_worker_are_removed_when_a_worker_starts(gw_worker, busybox, tmp_path):
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sleep", "300"])
    wait_for(lambda: running(result.id), what="the container to run")

    gw_worker.stop(signal.SIGKILL)
    time.sleep(0.5)
    assert running(result.id), "Docker keeps a killed worker's container running"

    log_path = tmp_path / "second-worker.log"
    with log_path.open("wb") as log:
        second = subprocess.Popen(
            [sys.executable, "-m", "girder_worker", "-l", "info", "-P", "threads", "-c", "1"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}, **gw_worker.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        wait_for(lambda: not docker_ps(f"girder_worker.task_id={result.id}"), timeout=60, what="the reaper")
        # Any worker with the docker plugin on this host reaps the container (on a shared
        # test machine, another session's worker may do it first); the task's own broker
        # tells the second worker that the task was lost, and its job ends.
        job = gw_worker.job(result)
        assert job.status == JobStatus.ERROR, log_path.read_text()
        assert "worker lost once (at-most-once); the job failed" in job.log
        assert result.state == "FAILURE"
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()

# ruff: noqa: F811  (the test functions take the fixtures imported below as arguments)
"""girder_worker.testing, the pytest fixtures for plugins' tests, used as a plugin's tests use them."""

from __future__ import annotations

import signal

import pytest
from celery._state import get_current_app

from girder_worker.testing import (  # noqa: F401  (the fixtures this module uses)
    JobRecord,
    Progress,
    gw_eager_app,
    gw_worker,
    gw_worker_args,
    gw_worker_env,
)
from girder_worker_utils import JobStatus

from ..conftest import ROOT
from . import plugin_kit_tasks

KIT = "tests.integration.plugin_kit_tasks"


@pytest.fixture
def gw_worker_env(monkeypatch):  # overrides the plugin's, as a plugin's conftest.py would
    # The shell's GIRDER_WORKER_* variables must not reach the worker or its client.
    monkeypatch.setenv("GIRDER_WORKER_BROKER", "redis://127.0.0.1:1/0")
    return {"PYTHONPATH": str(ROOT)}


@pytest.fixture
def gw_worker_args():
    return ("-P", "threads", "-c", "2", "-I", KIT)


def test_worker_reports_status_progress_and_output(gw_worker):
    result = gw_worker.delay(plugin_kit_tasks.count, 3)

    assert result.get(timeout=60) == 3
    job = gw_worker.job(result)
    assert job.statuses == [JobStatus.RUNNING, JobStatus.SUCCESS]
    assert job.progress[-1] == Progress(current=3, total=3, message="counted")
    assert job.log == "step 1\nstep 2\nstep 3\n"
    assert "kit.count" in gw_worker.tasks
    assert "embedded, no server needed" in gw_worker.log


def test_a_task_can_be_sent_by_name(gw_worker):
    result = gw_worker.apply_async("kit.write", args=["written to the job\n"])

    assert result.get(timeout=60) == 19
    assert gw_worker.job(result).log == "written to the job\n"


def test_cancel_stops_a_running_task(gw_worker):
    result = gw_worker.delay(plugin_kit_tasks.count, 100_000, pause=0.01)
    running = gw_worker.job(result, until=lambda job: job.progress)
    assert running.status == JobStatus.RUNNING

    outcome = gw_worker.cancel(result)

    assert outcome.sent
    job = gw_worker.job(result)
    assert job.status == JobStatus.CANCELED
    assert "cancelled at " in job.log
    assert result.state == "REVOKED"


def test_a_failing_task_ends_its_job_in_error_with_the_traceback(gw_worker):
    result = gw_worker.delay(plugin_kit_tasks.fail, "no such image")

    with pytest.raises(ValueError, match="no such image"):
        result.get(timeout=60)
    job = gw_worker.job(result)
    assert job.status == JobStatus.ERROR
    assert "ValueError: no such image" in job.log


def test_an_unknown_task_is_reported_before_it_is_sent(gw_worker):
    with pytest.raises(LookupError, match=r"the worker has no task 'kit\.nope' \(its \[tasks\] are .*kit\.count"):
        gw_worker.delay("kit.nope")


def test_job_waits_until_told_and_then_times_out(gw_worker):
    result = gw_worker.delay(plugin_kit_tasks.count, 1)
    assert result.get(timeout=60) == 1

    with pytest.raises(TimeoutError, match=rf"job {result.id} did not get there in 0.2 s"):
        gw_worker.job(result, until=lambda job: job.status == JobStatus.CANCELED, timeout=0.2)


def test_the_worker_can_be_stopped_gracefully(gw_worker):
    assert gw_worker.stop(signal.SIGTERM) == 0
    assert "Warm shutdown" in gw_worker.log


def test_eager_app_records_what_the_task_reports(gw_eager_app):
    assert get_current_app() is gw_eager_app.app

    counted = plugin_kit_tasks.count.delay(2)
    written = plugin_kit_tasks.write.delay("a line\n")

    assert counted.get() == 2
    job = gw_eager_app.job(counted)
    assert job.statuses == [JobStatus.RUNNING, JobStatus.SUCCESS]
    assert job.progress == [
        Progress(current=0, total=2, message="step 1"),
        Progress(current=1, total=2, message="step 2"),
        Progress(current=2, total=2, message="counted"),
    ]
    assert written.get() == 7
    assert gw_eager_app.job(written).log == "a line\n"


def test_eager_app_records_a_failure(gw_eager_app):
    result = plugin_kit_tasks.fail.delay("bad input")

    with pytest.raises(ValueError, match="bad input"):
        result.get()
    assert gw_eager_app.job(result).statuses == [JobStatus.RUNNING, JobStatus.ERROR]


def test_eager_app_runs_installed_plugins_tasks(gw_eager_app):
    from gwexample.analyses.tasks import fibonacci

    assert fibonacci.delay(20).get() == 6765
    assert gw_eager_app.job(fibonacci.delay(3)) == JobRecord(statuses=[JobStatus.RUNNING, JobStatus.SUCCESS])

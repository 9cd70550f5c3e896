"""The parts of time limits that need no worker: the shared table and the job log line."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker._outcome import time_limit_line as girder_line
from girder_worker.cancellation._shm import SharedTable
from girder_worker.cancellation._timelimit import reason_for
from girder_worker_utils import TaskCancelled, TaskTerminated


def test_a_pool_child_reads_which_limit_stopped_its_run_and_why():
    table = SharedTable(2)
    flag = table.begin(1, "task-1")

    assert table.expire("task-1", "soft", reason_for("soft", 2)) is not None
    assert flag.is_set()
    assert (flag.time_limit, flag.reason) == ("soft", "soft time limit (2 s) exceeded")

    table.expire("task-1", "hard", reason_for("hard", 4.5))
    assert (flag.time_limit, flag.reason) == ("hard", "hard time limit (4.5 s) exceeded")


def test_a_time_limit_leaves_no_cancel_for_a_later_run_of_the_same_id():
    table = SharedTable(1)
    table.begin(0, "task-1")
    table.expire("task-1", "soft", reason_for("soft", 1))
    table.end(0)

    again = table.begin(0, "task-1")  # a retry of the same task

    assert not again.is_set()


def test_a_soft_limit_does_not_overwrite_a_users_cancel_nor_reach_an_idle_slot():
    table = SharedTable(1)
    assert table.expire("nobody", "soft", "soft time limit (1 s) exceeded") is None
    flag = table.begin(0, "task-1")
    table.cancel("task-1")

    table.expire("task-1", "soft", "soft time limit (1 s) exceeded")

    assert (flag.time_limit, flag.reason) == (None, "cancelled")


@pytest.mark.parametrize(
    ("exception", "line"),
    [
        (SoftTimeLimitExceeded("soft time limit (2 s) exceeded"), "soft time limit (2 s) exceeded; the task stopped"),
        (TimeLimitExceeded("hard time limit (4 s) exceeded"), "hard time limit (4 s) exceeded; the task stopped"),
    ],
)
def test_the_job_log_line_names_the_limit(exception, line):
    assert girder_line(exception) == f"girder-worker: {line}"


def test_the_job_log_line_says_when_the_task_was_terminated():
    try:
        raise TimeLimitExceeded("hard time limit (4 s) exceeded") from TaskTerminated()
    except TimeLimitExceeded as exc:
        line = girder_line(exc)
    assert line == "girder-worker: hard time limit (4 s) exceeded; the task was terminated"


def test_other_failures_have_no_time_limit_line():
    assert girder_line(ValueError("boom")) is None
    assert girder_line(TaskCancelled()) is None

"""How a run ended, and what the result, the Girder job and monitors are told: one table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker._outcome import (
    Ending,
    of_failure,
    of_lost,
    of_refused,
    of_revoked,
    of_success,
    of_unknown_task,
)
from girder_worker_utils import JobStatus, TaskLost, TaskTerminated

CORE = Path(__file__).parents[2] / "packages" / "girder-worker-core" / "src" / "girder_worker"


def test_a_run_that_returned_succeeds_everywhere_with_nothing_added_to_its_log():
    outcome = of_success()
    assert (outcome.state, outcome.job_status, outcome.event, outcome.log) == (
        "SUCCESS",
        JobStatus.SUCCESS,
        "task-succeeded",
        "",
    )


def test_a_run_that_raised_fails_and_its_job_log_ends_with_the_traceback():
    outcome = of_failure(ValueError("bad input"), "Traceback (most recent call last):\nValueError: bad input")
    assert (outcome.ending, outcome.state, outcome.job_status, outcome.event) == (
        Ending.FAILED,
        "FAILURE",
        JobStatus.ERROR,
        "task-failed",
    )
    assert outcome.log == "Traceback (most recent call last):\nValueError: bad input\n"


def test_without_a_traceback_the_log_names_the_exception():
    assert of_failure(KeyError("x")).log == "KeyError: 'x'\n"


def test_a_run_that_raised_after_its_cancel_is_a_cancelled_job_but_a_failed_result():
    outcome = of_failure(RuntimeError("cleanup failed"), "Traceback...\nRuntimeError: cleanup failed\n", cancelled=True)
    assert (outcome.state, outcome.job_status) == ("FAILURE", JobStatus.CANCELED)
    assert outcome.log.endswith("girder-worker: the task raised after it was cancelled\n")
    assert "RuntimeError: cleanup failed\n" in outcome.log


@pytest.mark.parametrize(
    ("exception", "line"),
    [
        (SoftTimeLimitExceeded("soft time limit (2 s) exceeded"), "soft time limit (2 s) exceeded; the task stopped"),
        (TimeLimitExceeded("time limit (5 s) exceeded"), "time limit (5 s) exceeded; the task stopped"),
    ],
)
def test_a_time_limit_is_a_failure_with_one_line_even_though_it_cancelled_the_run(exception, line):
    # A time limit sets the run's cancel flag too: it must not end the job CANCELED.
    outcome = of_failure(exception, "Traceback of the worker's machinery", cancelled=True)
    assert (outcome.ending, outcome.state, outcome.job_status) == (Ending.TIME_LIMIT, "FAILURE", JobStatus.ERROR)
    assert outcome.log == f"girder-worker: {line}\n"


def test_a_time_limit_that_had_to_terminate_the_run_says_so():
    try:
        raise TimeLimitExceeded("time limit (1 s) exceeded") from TaskTerminated("time limit (1 s) exceeded")
    except TimeLimitExceeded as exc:
        outcome = of_failure(exc)
    assert outcome.log == "girder-worker: time limit (1 s) exceeded; the task was terminated\n"


def test_a_lost_run_has_no_traceback_but_the_policys_reason():
    outcome = of_failure(TaskLost("worker lost 2 times (at-least-once, max_deliveries 2)"), "Traceback: irrelevant")
    assert outcome == of_lost("worker lost 2 times (at-least-once, max_deliveries 2)")
    assert (outcome.state, outcome.job_status, outcome.event) == ("FAILURE", JobStatus.ERROR, "task-failed")
    assert outcome.log == "girder-worker: worker lost 2 times (at-least-once, max_deliveries 2); the job failed\n"


@pytest.mark.parametrize(
    ("kwargs", "ending", "line"),
    [
        ({}, Ending.CANCELLED, ""),
        (
            {"terminated": True},
            Ending.TERMINATED,
            "girder-worker: the task did not stop within its cancel grace period and was terminated\n",
        ),
        ({"expired": True}, Ending.EXPIRED, "girder-worker: the task expired before it could run\n"),
    ],
)
def test_every_cancel_is_revoked_and_a_canceled_job(kwargs, ending, line):
    outcome = of_revoked(**kwargs)
    assert (outcome.ending, outcome.state, outcome.job_status, outcome.event, outcome.log) == (
        ending,
        "REVOKED",
        JobStatus.CANCELED,
        "task-revoked",
        line,
    )


def test_a_refused_message_and_an_unknown_task_end_their_jobs_in_error_with_one_line():
    refused = of_refused("girder-worker: task gwexample.fib[1]: refused: too large")
    assert (refused.state, refused.job_status, refused.log) == (
        "FAILURE",
        JobStatus.ERROR,
        "girder-worker: task gwexample.fib[1]: refused: too large\n",
    )
    unknown = of_unknown_task("w1@host", "nope.task")
    assert unknown.job_status == JobStatus.ERROR
    assert unknown.log == "girder-worker: w1@host has no task named 'nope.task'; is the plugin that has it installed?\n"


def test_every_ending_has_a_state_a_job_status_and_an_event():
    for ending in Ending:
        from girder_worker._outcome import Outcome

        outcome = Outcome(ending)
        assert outcome.state in ("SUCCESS", "FAILURE", "REVOKED")
        assert outcome.job_status in (JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED)
        assert outcome.event in ("task-succeeded", "task-failed", "task-revoked")


def test_one_function_in_core_writes_a_girder_jobs_final_status():
    """``JobChannel.finish(status)`` (the final status) is called only by ``end_job``; other
    ``finish()`` calls in core (a stream pump's, an analysis report's) take no status."""
    callers = []
    for path in sorted(CORE.rglob("*.py")):
        if "templates" in path.parts:  # cookiecutter sources, not Python until rendered
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "finish"
                    and (node.args or node.keywords)
                ):
                    callers.append(f"{path.relative_to(CORE)}:{func.name}")
    assert sorted(set(callers)) == ["girder/_signals.py:end_job"], callers

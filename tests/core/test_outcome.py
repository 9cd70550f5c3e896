"""How a run ended, and what the result, the Girder job and monitors are told: one table."""

from __future__ import annotations

import ast
import contextlib
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker import _outcome
from girder_worker._outcome import (
    Ending,
    line_of,
    of_failure,
    of_lost,
    of_refused,
    of_revoked,
    of_success,
    of_unknown_task,
    store_state,
)
from girder_worker_utils import JobStatus, TaskLost, TaskTerminated

from ..conftest import wait_for
from .fake_girder import FakeGirder

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


def test_a_job_log_line_ends_with_one_newline_and_nothing_stays_nothing():
    assert [line_of("a"), line_of("a\n"), line_of("a\nb"), line_of("")] == ["a\n", "a\n", "a\nb\n", ""]


def test_a_note_on_a_job_is_one_line_however_it_was_given(monkeypatch):
    from girder_worker.girder import _signals

    written = []
    channel = SimpleNamespace(write=written.append, close=lambda: written.append("<closed>"))
    monkeypatch.setattr(_signals, "_channel_for", lambda headers, app: channel)
    _signals.note_on_job({}, None, "girder-worker: delivered again")
    _signals.note_on_job({}, None, "girder-worker: delivered again\n")
    assert written == ["girder-worker: delivered again\n", "<closed>"] * 2


class Backend:
    def __init__(self) -> None:
        self.failures: list[tuple[object, ...]] = []

    def mark_as_failure(self, *args: object, **kwargs: object) -> None:
        self.failures.append((*args, kwargs))


def test_a_lost_runs_state_is_stored_as_celery_stores_a_failure():
    backend, exception = Backend(), TaskLost("worker lost once (at-most-once)")
    store_state(backend, "t1", of_lost("worker lost once (at-most-once)"), exception)
    assert backend.failures == [("t1", exception, {})]


@pytest.mark.parametrize("outcome", [of_success(), of_revoked(), of_revoked(expired=True)])
def test_only_a_failure_is_stored_outside_the_run(outcome):
    backend = Backend()
    with pytest.raises(ValueError, match=outcome.state):
        store_state(backend, "t1", outcome, TaskLost("x"))
    assert backend.failures == []


class Dispatcher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def send(self, type: str, **fields: object) -> None:
        self.sent.append((type, fields))


def lost_workers_failer(connected: bool) -> tuple[object, Dispatcher]:
    """A worker whose consumer's dispatcher sends (``connected``), or one that is still starting."""
    dispatcher = Dispatcher()
    if connected:
        return SimpleNamespace(consumer=SimpleNamespace(event_dispatcher=dispatcher)), dispatcher

    @contextlib.contextmanager
    def default_dispatcher(hostname: str):
        assert hostname == "survivor@host"
        yield dispatcher

    events = SimpleNamespace(default_dispatcher=default_dispatcher)
    return SimpleNamespace(
        consumer=None, task_events=True, hostname="survivor@host", app=SimpleNamespace(events=events)
    ), dispatcher


@pytest.mark.parametrize("connected", [True, False])
def test_a_lost_task_is_announced_with_its_outcomes_event_and_celerys_task_failed_fields(connected):
    from girder_worker.monitoring._task_events import announce_lost

    worker, dispatcher = lost_workers_failer(connected)
    announce_lost(worker, "t1", "worker lost once (at-most-once)")
    assert dispatcher.sent == [
        (
            of_lost("worker lost once (at-most-once)").event,
            {"uuid": "t1", "exception": "TaskLost('worker lost once (at-most-once)')", "traceback": ""},
        )
    ]
    assert dispatcher.sent[0][0] == "task-failed"


def test_a_lost_tasks_event_is_the_tables(monkeypatch):
    from girder_worker.monitoring._task_events import announce_lost

    monkeypatch.setitem(_outcome._STATE, Ending.LOST, ("FAILURE", JobStatus.ERROR, "task-lost-by-the-table"))
    worker, dispatcher = lost_workers_failer(True)
    announce_lost(worker, "t1", "worker lost once (at-most-once)")
    announce_lost(worker, "t2", "worker lost once (at-most-once)", of_lost("worker lost once (at-most-once)"))
    assert [event for event, _ in dispatcher.sent] == ["task-lost-by-the-table"] * 2


def reaped(tmp_path, girder: FakeGirder) -> tuple[object, str, list[tuple[object, ...]]]:
    """Fail a task of a worker that was lost, at most once, as a surviving worker does."""
    from girder_worker._app import create_app
    from girder_worker._config import read_config
    from girder_worker.delivery._delivery import Delivery
    from girder_worker.delivery._leases import SqliteLeaseStore

    app = create_app(
        read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), "GIRDER_WORKER_DELIVERY": "at-most-once"})
    )
    store = SqliteLeaseStore(tmp_path / "leases")
    delivery = Delivery(app, "survivor", store)
    announced: list[tuple[object, ...]] = []
    delivery.announce_failed = lambda *args: announced.append(args)
    task_id = str(uuid.uuid4())
    body = [[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    headers = {"id": task_id, "task": "gwtest.lost", "retries": 0, "lang": "py", "jobInfoSpec": girder.spec}
    message = {
        "body": json.dumps(body),
        "base64": False,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": headers,
        "properties": {},
        "exchange": "",
        "routing_key": "celery",
    }
    store.claim(task_id, f"lost-{uuid.uuid4().hex[:6]}/x", message)  # a worker that never beats again
    assert delivery.reap() == 1
    return app, task_id, announced


def test_a_task_failed_with_its_lost_worker_fails_its_result_event_and_job_alike(tmp_path):
    girder = FakeGirder(status=JobStatus.RUNNING)
    try:
        app, task_id, announced = reaped(tmp_path, girder)
        reason = "worker lost once (at-most-once)"
        result = app.AsyncResult(task_id)
        assert result.state == "FAILURE"
        assert (type(result.result), result.result.args) == (TaskLost, (reason,))
        assert announced == [(task_id, reason, of_lost(reason))]
        wait_for(lambda: girder.statuses() and girder.log_text(), what="the job's last line and final status")
        assert girder.statuses() == [JobStatus.ERROR]
        assert girder.log_text() == of_lost(reason).log
    finally:
        girder.stop()


def test_a_task_failed_with_its_lost_worker_ends_its_job_as_the_table_says(tmp_path, monkeypatch):
    monkeypatch.setitem(_outcome._STATE, Ending.LOST, ("FAILURE", JobStatus.CANCELED, "task-lost-by-the-table"))
    girder = FakeGirder(status=JobStatus.RUNNING)
    try:
        app, task_id, announced = reaped(tmp_path, girder)
        assert app.AsyncResult(task_id).state == "FAILURE"
        assert [outcome.event for _, _, outcome in announced] == ["task-lost-by-the-table"]
        wait_for(lambda: girder.statuses(), what="the job's final status")
        assert girder.statuses() == [JobStatus.CANCELED]
    finally:
        girder.stop()

"""The checks of a task message, one by one: what each accepts and the line each gives."""

from __future__ import annotations

import pytest
from celery import Celery

from girder_worker.broker._message_checks import check_arguments, check_body, check_headers, check_size, check_task_id

app = Celery(set_as_current=False)


@app.task(name="t.add")
def add(x, y):
    return x + y


@app.task(name="t.bound", bind=True)
def bound(self, a, b=2, *rest, key, flag=False, **extra):
    return a


@app.task(name="t.untyped", typing=False)
def untyped(x):
    return x


def problem(task_name, args, kwargs):
    rejection = check_arguments(app.tasks[task_name], args, kwargs, {})
    return None if rejection is None else rejection.problem


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [([1, 2], {}), ([1], {"y": 2}), ([], {"x": 1, "y": 2})],
)
def test_arguments_that_fit_pass(args, kwargs):
    assert problem("t.add", args, kwargs) is None


@pytest.mark.parametrize(
    ("args", "kwargs", "says"),
    [
        ([1, 2, 3], {}, "called with 3 positional arguments, but its signature is add(x, y): too many positional"),
        (
            [1],
            {},
            "called with 1 positional argument, but its signature is add(x, y): missing a required argument: 'y'",
        ),
        ([], {}, "called with 0 positional arguments, but its signature is add(x, y): missing a required argument"),
        ([1, 2], {"z": 3}, "called with 2 positional arguments and keyword argument 'z'"),
        ([1], {"x": 2}, "multiple values for argument 'x'"),
    ],
)
def test_arguments_that_do_not_fit_say_how(args, kwargs, says):
    assert says in problem("t.add", args, kwargs)


def test_a_bound_task_is_checked_without_self_and_with_its_keyword_only_arguments():
    assert problem("t.bound", [1, 2, 3, 4], {"key": 1, "other": 5}) is None
    assert "missing a required argument: 'key'" in problem("t.bound", [1], {})
    assert "bound(a, b=2, *rest, key, flag=False, **extra)" in problem("t.bound", [], {"key": 1})


def test_a_task_with_typing_false_is_not_checked():
    assert problem("t.untyped", [1, 2, 3], {"z": 1}) is None


def test_a_rejected_call_fails_with_a_type_error():
    rejection = check_arguments(app.tasks["t.add"], [1, 2, 3], {}, {})
    assert isinstance(rejection.exception(), TypeError)


def test_the_signature_is_read_once_per_task():
    cache = {}
    task = app.tasks["t.add"]
    check_arguments(task, [1, 2], {}, cache)
    check_arguments(task, [1, 2, 3], {}, cache)
    assert list(cache) == [task]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"x": 1}, "the body is a JSON object, not the [args, kwargs, embed] array"),
        ("text", "the body is a JSON string"),
        (7, "the body is a JSON number"),
        (None, "the body is a JSON null"),
        ([[1], {}], "the body is a JSON array of 2 items"),
        ([{}, {}, None], "its args are a JSON object, not an array"),
        ([[], [], None], "its kwargs are a JSON array, not an object"),
        ([[], {}, []], "its embed is a JSON array, not an object or null"),
        ({"args": [], "kwargs": []}, "its kwargs are a JSON array"),
    ],
)
def test_bodies_that_are_not_task_bodies(payload, says):
    assert says in check_body(payload).problem


@pytest.mark.parametrize("payload", [[[1], {"a": 1}, None], [[], {}, {"callbacks": None}], {"args": [1]}])
def test_task_bodies_pass(payload):
    assert check_body(payload) is None


def test_headers_need_a_task_name_and_an_id():
    assert check_headers({"task": "t.add", "id": "1"}) is None
    assert "has no 'id' header" in check_headers({"task": "t.add"}).problem
    assert "'task' header is a JSON array, not a task name" in check_headers({"task": ["t"], "id": "1"}).problem


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"timelimit": "soon"}, "its 'timelimit' header is not [hard, soft] seconds"),
        ({"timelimit": [1, "x"]}, "its 'timelimit' header is not [hard, soft] seconds"),
        ({"timelimit": [1, -2]}, "its 'timelimit' header is not [hard, soft] seconds"),
        ({"retries": "many"}, "its 'retries' header is not a whole number >= 0"),
        ({"retries": True}, "its 'retries' header is not a whole number >= 0"),
        ({"shadow": {"a": 1}}, "its 'shadow' header is a JSON object, not a string"),
        ({"root_id": 5}, "its 'root_id' header is a JSON number, not a string"),
    ],
)
def test_headers_celery_would_fail_on(extra, says):
    assert says in check_headers({"task": "t.add", "id": "1", **extra}).problem


@pytest.mark.parametrize(
    "name",
    [
        "girder_worker_started",  # the run would skip its cancel flag, transforms and result hooks
        "girder_worker_refusal",
        "girder_worker_lease",  # the run would claim a lease as the message says
        "girder_worker_cancel",
        "girder_worker_job_manager",
        "girder_worker_started_stored",
        "girder_worker_anything_later",
    ],
)
def test_a_message_may_not_set_the_workers_own_names_on_a_run(name):
    rejection = check_headers({"task": "t.add", "id": "1", name: True})
    assert rejection.problem == f"its {name!r} header is a name the worker keeps for its own state of a run"
    assert rejection.fix == "drop it: only the worker sets girder_worker_* names on a run"
    # Celery makes the run's request from the body's embed too.
    assert check_body([[1], {}, {name: True}]).problem == (
        f"its {name!r} embed key is a name the worker keeps for its own state of a run"
    )


def test_the_publication_time_a_client_stamps_passes():
    assert check_headers({"task": "t.add", "id": "1", "girder_worker_sent_at": 1764800000.0}) is None


def test_headers_celery_sends_pass():
    headers = {"task": "t.add", "id": "1", "timelimit": [None, 2.5], "retries": 0, "shadow": None, "group": "g"}
    assert check_headers(headers) is None


def test_size_limit_zero_means_none():
    assert check_size(b"x" * 11, 10).problem == "its body is 11 bytes, more than GIRDER_WORKER_MAX_MESSAGE_BYTES (10)"
    assert check_size(b"x" * 10, 10) is None
    assert check_size(b"x" * 11, 0) is None


@pytest.mark.parametrize(
    ("task_id", "says"),
    [
        ("a/b", "contains '/' or starts with '.'"),
        ("..", "contains '/' or starts with '.'"),
        (".lease", "contains '/' or starts with '.'"),
        ("x\x00y", "contains control characters"),
        ("x\ny", "contains control characters"),
        ("é" * 101, "is longer than 200 bytes"),
    ],
)
def test_task_ids_that_are_no_safe_names_are_refused(task_id, says):
    rejection = check_headers({"task": "gwtest.add", "id": task_id})

    assert rejection is not None
    assert rejection.problem == f"its 'id' header {says}, so it is not a safe task id"


def test_ordinary_task_ids_pass():
    for task_id in ("0f3c2a1e-9a7b-4c3d-8e2f-1a2b3c4d5e6f", "job-42", "é" * 100, "x" * 200):
        assert check_task_id(task_id) is None

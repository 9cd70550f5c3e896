"""Bad task messages on real brokers and real workers: each one becomes one log line,
a failed result and an ERROR on its Girder job, and the worker keeps serving."""

from __future__ import annotations

import json
import pickle
import uuid
from typing import Any

import kombu
import pytest
from celery.exceptions import NotRegistered

from girder_worker.broker._message_checks import MessageTooLargeError
from girder_worker.girder._job_recorder import JobRecorder
from girder_worker_utils import JobStatus

from .conftest import purge_queue
from .girder_jobs import (
    ERROR,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    log_of,
    on_queue,
    schedule,
)

LIMIT = 65_536
QUIET = ("--without-mingle", "--without-gossip")
POOL_OF = {
    "embedded": "prefork",
    "rabbitmq": "threads",
    "redis": "solo",
}  # the checks run before any pool  # other workers on a shared broker say nothing in our log
SECRET = "client-token-that-must-never-be-logged"
GOOD_ARGS = [[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]

# name: (headers without the id, body, what the one log line says)
CASES: dict[str, tuple[dict[str, Any], Any, str]] = {
    "invalid JSON": ({"task": "gwtest.add"}, b'[[1, 2], {"x": ', "its body is not valid JSON"),
    "nested too deep": (  # Python's JSON decoder raises RecursionError, not ValueError
        {"task": "gwtest.add"},
        b"[" * 30_000 + b"]" * 30_000,
        "its body is not valid JSON (maximum recursion depth exceeded",
    ),
    "pickle": (
        {"task": "gwtest.add"},
        pickle.dumps(((1, 2), {}, None)),
        "content type 'application/x-python-serialize' is not accepted, only JSON is",
    ),
    "a JSON object": ({"task": "gwtest.add"}, {"x": 1}, "the body is a JSON object, not the [args, kwargs, embed]"),
    "a JSON string": ({"task": "gwtest.add"}, "add 1 2", "the body is a JSON string, not the [args, kwargs, embed]"),
    "two items": ({"task": "gwtest.add"}, [[1, 2], {}], "the body is a JSON array of 2 items"),
    "args not a list": ({"task": "gwtest.add"}, [5, {}, None], "its args are a JSON number, not an array"),
    "kwargs not a dict": ({"task": "gwtest.add"}, [[1], [2], None], "its kwargs are a JSON array, not an object"),
    "no id header": ({"task": "gwtest.add", "id": None}, GOOD_ARGS, "it has no 'id' header"),
    "bad timelimit": (  # stops a plain Celery worker ("Unrecoverable error")
        {"task": "gwtest.add", "timelimit": "soon"},
        GOOD_ARGS,
        "its 'timelimit' header is not [hard, soft] seconds (numbers or null)",
    ),
    "bad stamps": (  # no check of ours knows this one: Celery fails on it after reserving the task
        {"task": "gwtest.add", "stamped_headers": 5, "stamps": {}},
        GOOD_ARGS,
        "the worker cannot read it (TypeError: ",
    ),
    "no task header": ({}, GOOD_ARGS, "it has no 'task' header, so it is not a Celery task message"),
    "unknown task": (
        {"task": "gwtest.not_installed"},
        GOOD_ARGS,
        "this worker has no task of that name; the message was discarded (install the plugin that has it "
        "where the worker runs; `girder-worker plugins` lists",
    ),
    "oversized": (
        {"task": "gwtest.add"},
        [["x" * LIMIT, "y"], {}, None],
        f"its body is {LIMIT + 21:,} bytes, more than GIRDER_WORKER_MAX_MESSAGE_BYTES ({LIMIT:,})",
    ),
    "too many args": (
        {"task": "gwtest.add"},
        [[1, 2, 3], {}, None],
        "called with 3 positional arguments, but its signature is add(x, y): too many positional arguments; "
        "the message was discarded (send it with the arguments its signature names)",
    ),
    "unknown kwarg": (
        {"task": "gwtest.add"},
        [[1], {"z": 2}, None],
        "called with 1 positional argument and keyword argument 'z', but its signature is add(x, y): "
        "missing a required argument: 'y'",
    ),
}


@pytest.fixture
def recorder():
    recorder = JobRecorder()
    yield recorder
    recorder.close()


def publish_raw(app: Any, queue: str, headers: dict[str, Any], body: Any) -> None:
    """Publish what no Celery client would: ``body`` (JSON-encoded unless bytes) as is."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    content_type = "application/x-python-serialize" if data.startswith(b"\x80") else "application/json"
    with app.connection_for_write() as conn:
        producer = kombu.Producer(conn.default_channel)
        producer.publish(
            data,
            exchange=queue,
            routing_key=queue,
            headers={k: v for k, v in headers.items() if v is not None},
            content_type=content_type,
            content_encoding="binary" if content_type.endswith("serialize") else "utf-8",
            declare=[kombu.Queue(queue, kombu.Exchange(queue), routing_key=queue)],
        )


def lines_about(log: str, offset: int, marker: str) -> list[str]:
    """The log's records from ``offset`` on that name ``marker``; fails on any line that
    continues a record (a multi-line dump). Other lines are not counted: a shared broker
    and result backend bring other sessions' chatter (remote-control greetings, leases)."""
    lines = log[offset:].splitlines()
    continued = [line for line in lines if line.strip() and not line.startswith("[")]
    assert not continued, continued
    return [line for line in lines if marker in line]


def test_each_bad_message_is_one_line_a_failed_result_and_an_error_job(
    broker, env_for, start_worker, client_app, unique_queue, recorder
):
    env = {**env_for(broker), "GIRDER_WORKER_MAX_MESSAGE_BYTES": str(LIMIT)}
    pool = POOL_OF[broker]
    worker = start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        for case, (headers, body, says) in CASES.items():
            task_id = str(uuid.uuid4())
            job_id = uuid.uuid4().hex[:24]
            offset = len(worker.log)
            publish_raw(
                app,
                unique_queue,
                {
                    "id": task_id,
                    **headers,
                    "jobInfoSpec": recorder.job_info_spec(job_id),
                    "girder_client_token": SECRET,
                    "girder_api_url": recorder.api_url,
                },
                body,
            )
            good = app.send_task("gwtest.add", args=[2, 3], queue=unique_queue)

            assert good.get(timeout=30) == 5, case
            job = recorder.wait(job_id, lambda r: r.finished, timeout=30)
            assert job.statuses == [JobStatus.ERROR], case
            about_it = lines_about(worker.log, offset, task_id if "id" not in headers else "gwtest.add[?]")
            if case == "bad stamps":  # Celery took it for a task, and said so, before it failed
                assert about_it[0].endswith(f"Task gwtest.add[{task_id}] received"), about_it
                about_it = about_it[1:]
            assert len(about_it) == 1, (case, about_it)
            assert says in about_it[0], (case, about_it[0])
            if "id" not in headers:  # the message had one: its result failed
                bad = app.AsyncResult(task_id)
                with pytest.raises(NotRegistered if case == "unknown task" else Exception):
                    bad.get(timeout=30)
                assert bad.state == "FAILURE", case
                if case.startswith(("too many", "unknown kwarg")):
                    assert isinstance(bad.result, TypeError)
                    assert str(bad.result) in about_it[0]
            job_says = "has no task named 'gwtest.not_installed'" if case == "unknown task" else says
            assert job_says in job.log, (case, job.log)
        assert SECRET not in worker.log
        assert recorder.token not in worker.log
        assert "Traceback" not in worker.log
    finally:
        purge_queue(app, unique_queue)


def test_a_client_refuses_an_oversized_message_before_sending_it(
    broker, env_for, start_worker, client_app, unique_queue
):
    env = {**env_for(broker), "GIRDER_WORKER_MAX_MESSAGE_BYTES": str(LIMIT)}
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        task_id = str(uuid.uuid4())
        with pytest.raises(MessageTooLargeError, match=r"more than GIRDER_WORKER_MAX_MESSAGE_BYTES \(65,536\)") as info:
            app.send_task("gwtest.add", args=["x" * LIMIT, "y"], queue=unique_queue, task_id=task_id)
        assert info.value.size > LIMIT
        assert info.value.limit == LIMIT
        assert "nothing was sent" in str(info.value)

        good = app.send_task("gwtest.add", args=["x" * 1000, "y"], queue=unique_queue)  # the connection still works
        assert good.get(timeout=30) == "x" * 1000 + "y"
        assert task_id not in worker.log
    finally:
        purge_queue(app, unique_queue)


def test_girder_jobs_of_unknown_and_miscalled_tasks_end_error(girder, girder_queue, env_for, start_worker):
    worker = start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    unknown = schedule(girder, girder_queue, "gwtest.not_installed")
    miscalled = schedule(girder, girder_queue, "gwtest.add", [1, 2, 3])

    failed = girder.wait_for_status(miscalled["_id"], ERROR)
    assert "called with 3 positional arguments, but its signature is add(x, y)" in log_of(failed)
    failed = girder.wait_for_status(unknown["_id"], ERROR)
    assert "has no task named 'gwtest.not_installed'" in log_of(failed)
    log = worker.log
    assert len([line for line in log.splitlines() if unknown["celeryTaskId"] in line]) == 1
    assert len([line for line in log.splitlines() if miscalled["celeryTaskId"] in line]) == 1
    for job in (unknown, miscalled):
        assert job["jobInfoSpec"]["headers"]["Girder-Token"] not in log


def test_an_oversized_message_gets_no_girder_job_and_fails_the_job_it_names(girder, girder_queue, env_for, client_app):
    app = client_app({**env_for("rabbitmq"), "GIRDER_WORKER_MAX_MESSAGE_BYTES": str(LIMIT)})
    too_big = ["x" * LIMIT, "y"]

    task_id = str(uuid.uuid4())
    with pytest.raises(MessageTooLargeError):  # a publish with a Girder token would create a job first
        app.send_task(
            "gwtest.add",
            args=too_big,
            queue=girder_queue,
            task_id=task_id,
            headers={"girder_api_url": girder.api_url, "girder_client_token": girder.token},
        )
    status, jobs = girder.call("GET", "job", {"limit": 200})
    assert status == 200
    assert not [job for job in jobs if job.get("celeryTaskId") == task_id]

    job = girder.create_job(handler="celery_handler")  # made elsewhere; the message names it
    with pytest.raises(MessageTooLargeError):
        app.send_task("gwtest.add", args=too_big, queue=girder_queue, headers={"jobInfoSpec": job["jobInfoSpec"]})
    failed = girder.wait_for_status(job["_id"], ERROR)
    assert "more than GIRDER_WORKER_MAX_MESSAGE_BYTES (65,536); nothing was sent" in log_of(failed)

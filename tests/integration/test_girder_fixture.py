"""Smoke test of the Girder fixture: the real Girder 5.0.21 schedules a
``worker_handler`` job onto RabbitMQ, and the job token it hands out can drive
the job to SUCCESS.

Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). The job gets its own queue, so
a worker sharing that RabbitMQ never sees the message; the test consumes the
message and deletes the queue (and the exchange Celery declared for it).
"""

import contextlib
import time
import uuid

import kombu
import pytest

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUED, RUNNING, SUCCESS = 1, 2, 3


def _get_one(bound_queue, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        message = bound_queue.get(no_ack=False)
        if message is not None or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


@pytest.mark.broker("rabbitmq")
def test_girder_schedules_worker_handler_job_on_rabbitmq(girder):
    queue_name = f"test-{uuid.uuid4().hex}"
    job = girder.create_job(
        title="fixture smoke",
        type="gw-test",
        handler="worker_handler",
        args=[1, 2],
        kwargs={"x": 1},
        otherFields={"celeryQueue": queue_name, "celeryTaskName": "gw.test.noop"},
    )
    job_id = job["_id"]
    assert job["status"] == 0
    assert job["jobInfoSpec"]["url"].endswith(f"/job/{job_id}")

    with kombu.Connection(RABBITMQ_URL, connect_timeout=5) as conn:
        channel = conn.default_channel
        try:
            scheduled = girder.schedule(job_id)
            assert scheduled["status"] == QUEUED
            task_id = scheduled.get("celeryTaskId")
            assert task_id
            assert scheduled["celeryQueue"] == queue_name

            bound = kombu.Queue(queue_name)(channel)
            message = _get_one(bound)
            assert message is not None, f"no message on queue {queue_name}"
            message.ack()
            assert bound.get(no_ack=True) is None, "more than one message was sent"

            headers = message.headers
            assert headers["task"] == "gw.test.noop"
            assert headers["id"] == task_id
            spec = headers["jobInfoSpec"]
            assert spec["method"] == "PUT"
            assert spec["url"].endswith(f"/job/{job_id}")
            assert spec["url"].startswith(girder.api_url)
            assert spec["reference"] == job_id
            job_token = spec["headers"]["Girder-Token"]
            assert job_token
            assert job_token != girder.token
            assert message.content_type == "application/json"
            args, kwargs, _embed = message.decode()
            assert (args, kwargs) == ([1, 2], {"x": 1})
        finally:
            # Cleanup must not hide the real failure.
            with contextlib.suppress(Exception):
                kombu.Queue(queue_name)(conn.default_channel).delete()
            with contextlib.suppress(Exception):
                kombu.Exchange(queue_name)(conn.default_channel).delete()

    # The job token (scope jobs.job_<id>) drives the job, form-encoded like the worker does.
    for status in (RUNNING, SUCCESS):
        code, body = girder.call("PUT", f"job/{job_id}", {"status": status}, token=job_token)
        assert code == 200, body
        assert body["status"] == status
    # A job token is good for this job only.
    code, _ = girder.call("GET", "job/all", token=job_token)
    assert code == 401

    final = girder.wait_for_status(job_id, SUCCESS, timeout=5)
    assert [t["status"] for t in final["timestamps"]] == [QUEUED, RUNNING, SUCCESS]

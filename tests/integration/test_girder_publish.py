"""Publishing with a Girder URL and token creates the Girder job; a task's child tasks
get jobs of their own, with the parent's URL and token."""

from __future__ import annotations

import pytest

from .girder_jobs import (
    RUNNING,
    SUCCESS,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    history,
    on_queue,
    wait_for,
)


def jobs_of_task(girder, task_id):
    """The admin's jobs whose celeryTaskId is ``task_id`` (admins see that field)."""
    status, jobs = girder.call("GET", "job", {"limit": 200})
    assert status == 200, jobs
    return [j for j in jobs if j.get("celeryTaskId") == task_id]


def the_job_of(girder, task_id):
    [job] = wait_for(lambda: jobs_of_task(girder, task_id), timeout=10, what=f"a Girder job for task {task_id}")
    return job


@pytest.fixture
def client(client_app, env_for, girder_queue):
    app = client_app(env_for("rabbitmq"))
    app.conf.task_default_queue = girder_queue

    @app.task(name="gwtest.add", shared=False)
    def add(x, y):  # the worker has the real one; this is what a client holds
        return x + y

    return app


def test_apply_async_with_girder_options_creates_a_job(girder, client, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    result = client.tasks["gwtest.add"].apply_async(
        (2, 3),
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
        girder_job_title="adding up",
        girder_job_type="arithmetic",
        girder_job_other_fields={"meta": {"note": "from a test"}},
    )

    assert result.get(timeout=30) == 5
    job = girder.wait_for_status(the_job_of(girder, result.id)["_id"], SUCCESS)
    assert job["title"] == "adding up"
    assert job["type"] == "arithmetic"
    assert job["handler"] == "celery_handler"
    assert job["args"] == [2, 3]
    assert job["meta"] == {"note": "from a test"}
    assert history(job) == [RUNNING, SUCCESS]


def test_delay_takes_the_options_in_its_keyword_arguments(girder, client, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    result = client.tasks["gwtest.add"].delay(
        2, y=40, girder_api_url=girder.api_url, girder_client_token=girder.token, girder_job_title="by delay"
    )

    assert result.get(timeout=30) == 42
    job = girder.wait_for_status(the_job_of(girder, result.id)["_id"], SUCCESS)
    assert job["title"] == "by delay"
    assert job["kwargs"] == {"y": 40}  # sent as JSON, so Girder can read it


def test_send_task_with_girder_options_creates_a_job(girder, client, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    result = client.send_task(
        "gwtest.report",
        args=[2],
        queue=girder_queue,
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
        girder_job_title="sent by name",
    )

    assert result.get(timeout=30) == 2
    job = girder.wait_for_status(the_job_of(girder, result.id)["_id"], SUCCESS)
    assert job["title"] == "sent by name"
    assert job["progress"]["message"] == "done"


def test_girder_job_disable_publishes_without_a_job(girder, client, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    result = client.tasks["gwtest.add"].apply_async(
        (1, 1), girder_api_url=girder.api_url, girder_client_token=girder.token, girder_job_disable=True
    )

    assert result.get(timeout=30) == 2
    assert jobs_of_task(girder, result.id) == []


def test_a_token_that_cannot_create_jobs_still_publishes(girder, client, girder_queue, env_for, start_worker, caplog):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "solo"))

    result = client.tasks["gwtest.add"].apply_async(
        (1, 2), girder_api_url=girder.api_url, girder_client_token="not-a-token", girder_job_title="nope"
    )

    assert result.get(timeout=30) == 3
    assert jobs_of_task(girder, result.id) == []
    [record] = [r for r in caplog.records if r.name == "girder_worker.girder"]
    assert "answered 401" in record.getMessage()
    assert "not-a-token" not in record.getMessage()


def test_a_child_task_gets_a_child_job(girder, client, girder_queue, env_for, start_worker):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "prefork", 2))

    parent = client.send_task(
        "gwtest.spawn_child",
        args=[girder_queue, "the child"],
        queue=girder_queue,
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
        girder_job_title="the parent",
    )
    child_id = parent.get(timeout=30)

    parent_job = girder.wait_for_status(the_job_of(girder, parent.id)["_id"], SUCCESS)
    child_job = girder.wait_for_status(the_job_of(girder, child_id)["_id"], SUCCESS)
    assert parent_job["title"] == "the parent"
    assert child_job["title"] == "the child"
    assert child_job["parentId"] == parent_job["_id"]  # Girder's worker plugin links them
    assert client.AsyncResult(child_id).get(timeout=30) == 5

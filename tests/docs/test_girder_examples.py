"""The Girder page's examples, run against the real Girder with a real worker."""

from __future__ import annotations

import pytest

from ..conftest import broker_env
from ..integration.girder_server import RABBITMQ_URL, GirderServerFactory
from .test_examples import EXAMPLES


@pytest.fixture(scope="module", name="girder")
def girder_fixture(tmp_path_factory):
    """The real Girder (tests/integration/girder_server.py), for this module's tests."""
    factory = GirderServerFactory(tmp_path_factory.mktemp("girder"))
    try:
        yield factory(RABBITMQ_URL)
    finally:
        factory.stop_all()


def worker_env(tmp_path):
    return {**broker_env("embedded", tmp_path / "data"), "PYTHONPATH": str(EXAMPLES)}


def latest_job(girder, title):
    status, jobs = girder.call("GET", "job", {"limit": 50, "sort": "created", "sortdir": -1})
    assert status == 200, jobs
    return next(j for j in jobs if j["title"] == title)


def test_girder_publish_creates_a_job_that_shows_the_tasks_log(run, start_worker, girder, tmp_path):
    start_worker(worker_env(tmp_path), "-P", "solo", "-I", "girder_tasks", plugins=())

    result = run(str(EXAMPLES / "girder_publish.py"), girder.api_url, girder.token)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "9\n"
    job = girder.wait_for_status(latest_job(girder, "Counting words")["_id"], 3)
    assert "".join(job["log"]) == "text 1: 4 words\ntext 2: 2 words\ntext 3: 3 words\n"
    assert job["progress"] == {"current": 3.0, "total": 3.0, "message": "counted"}


def test_a_task_gets_a_girder_client_for_its_girder(start_worker, girder, tmp_path):
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    start_worker(worker_env(tmp_path), "-P", "solo", "-I", "girder_tasks", plugins=())
    app = create_app(read_config(broker_env("embedded", tmp_path / "data")))
    try:
        result = app.send_task("girder_tasks.whoami", girder_api_url=girder.api_url, girder_client_token=girder.token)
        assert result.get(timeout=60) == girder.login
    finally:
        app.close()

"""Girder schedules ``girder_worker.run`` the way its worker plugin always has: a
``worker_handler`` job with no ``celeryTaskName`` and kwargs ``{task, inputs,
outputs}``. Our worker runs it against the real Girder 5.0.21, passing through the
worker statuses, and pushes the outputs to a Girder item and to an HTTP endpoint.
A task published with a Girder URL and token uses them for ``girder`` bindings that
name none."""

from __future__ import annotations

import io
import json

import pytest
from girder_client import GirderClient

from girder_worker.analysis import AnalysisError

from ..http_endpoint import http_endpoint_fixture  # noqa: F401  (the http_endpoint fixture)
from .girder_jobs import QUEUED, RUNNING, SUCCESS, girder_queue_fixture, history, log_of  # noqa: F401
from .girder_server import CONVERTING_OUTPUT, FETCHING_INPUT, PUSHING_OUTPUT, GirderServer
from .test_girder_publish import the_job_of

TASK = {
    "name": "append and count",
    "mode": "python",
    "script": "print(f'{len(a)} rows from Girder')\nc = a + b\nn = len(c)\n",
    "inputs": [
        {"name": "a", "type": "table", "format": "objectlist"},
        {"name": "b", "type": "table", "format": "objectlist"},
    ],
    "outputs": [
        {"name": "c", "type": "table", "format": "objectlist"},
        {"name": "n", "type": "integer", "format": "integer"},
    ],
}


def girder_client(girder: GirderServer) -> GirderClient:
    client = GirderClient(apiUrl=girder.api_url)
    client.setToken(girder.token)
    if not client.get("assetstore"):  # the test server starts without one
        root = girder.run_dir / "assetstore"
        root.mkdir(exist_ok=True)
        client.post("assetstore", {"name": "test", "type": 0, "root": str(root)})
    return client


def test_girder_runs_an_analysis_job_in_the_originals_shape(girder, girder_queue, env_for, start_worker, http_endpoint):
    client = girder_client(girder)
    folder = next(client.listFolder(girder.user_id, parentFolderType="user", name="Private"))
    data = b"x,y\n1,2\n3,4\n"
    uploaded = client.uploadStreamToFolder(folder["_id"], io.BytesIO(data), "a.csv", len(data))
    results = client.createItem(folder["_id"], f"results {girder_queue}")
    where = {"mode": "girder", "api_url": girder.api_url, "token": girder.token}
    kwargs = {
        "task": TASK,
        "inputs": {
            "a": {**where, "id": uploaded["_id"], "resource_type": "file", "format": "csv"},
            "b": {"format": "objectlist", "data": [{"x": 5, "y": 6}]},
        },
        "outputs": {
            "c": {**where, "parent_type": "item", "parent_id": results["_id"], "name": "c.csv", "format": "csv"},
            "n": {"mode": "http", "method": "PUT", "url": http_endpoint.url + "/count", "format": "json"},
        },
    }
    start_worker(
        {**env_for("rabbitmq"), "GIRDER_WORKER_ALLOW_PYTHON_MODE": "true"}, "-P", "solo", "-Q", girder_queue, plugins=()
    )

    job = girder.create_job(
        title="analysis", type="gw-analysis", kwargs=kwargs, otherFields={"celeryQueue": girder_queue}
    )
    assert girder.schedule(job["_id"])["status"] == QUEUED
    done = girder.wait_for_status(job["_id"], SUCCESS, timeout=60)

    assert history(done) == [QUEUED, RUNNING, FETCHING_INPUT, RUNNING, CONVERTING_OUTPUT, PUSHING_OUTPUT, SUCCESS]
    assert "2 rows from Girder\n" in log_of(done)
    # Five stages: two inputs, the script, two outputs; the last progress update reaches Girder before SUCCESS.
    progress = {key: done["progress"].get(key) for key in ("current", "total", "message")}
    assert progress == {"current": 5.0, "total": 5.0, "message": "done"}
    [pushed] = client.listFile(results["_id"])
    assert pushed["name"] == "c.csv"
    content = io.BytesIO()
    client.downloadFile(pushed["_id"], content)
    assert content.getvalue() == b"x,y\n1,2\n3,4\n5,6\n"
    [put] = [r for r in http_endpoint.received if r.path == "/count"]
    assert (put.method, json.loads(put.body)) == ("PUT", 3)


def test_girder_bindings_default_to_the_url_and_token_the_task_was_sent_with(
    girder, girder_queue, env_for, start_worker, client_app
):
    client = girder_client(girder)
    folder = next(client.listFolder(girder.user_id, parentFolderType="user", name="Private"))
    data = b"x\n1\n2\n"
    uploaded = client.uploadStreamToFolder(folder["_id"], io.BytesIO(data), "x.csv", len(data))
    env = env_for("rabbitmq")
    start_worker(env, "-P", "solo", "-Q", girder_queue, plugins=())
    app = client_app(env)
    app.conf.task_default_queue = girder_queue
    from girder_worker.analysis.tasks import convert

    result = convert.apply_async(
        [
            "table",
            {"mode": "girder", "id": uploaded["_id"], "format": "csv"},
            {"mode": "girder", "parent_id": folder["_id"], "name": "x.json", "format": "objectlist.json"},
        ],
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
    )

    pushed = result.get(timeout=60)
    assert pushed["name"] == "x.json"
    assert "token" not in pushed
    content = io.BytesIO()
    client.downloadFile(pushed["file_id"], content)
    assert json.loads(content.getvalue()) == [{"x": 1}, {"x": 2}]
    # Publishing with a Girder URL and token made a celery_handler job; it shows the stages too.
    job = girder.wait_for_status(the_job_of(girder, result.id)["_id"], SUCCESS)
    assert history(job) == [RUNNING, FETCHING_INPUT, RUNNING, CONVERTING_OUTPUT, PUSHING_OUTPUT, SUCCESS]


def test_girder_inputs_keep_to_the_workers_data_budget_and_allowed_hosts(
    girder, girder_queue, env_for, start_worker, client_app
):
    client = girder_client(girder)
    folder = next(client.listFolder(girder.user_id, parentFolderType="user", name="Private"))
    big = b"x\n" + b"1\n" * 3000
    uploaded = client.uploadStreamToFolder(folder["_id"], io.BytesIO(big), "big.csv", len(big))
    env = env_for("rabbitmq")
    start_worker(
        {**env, "GIRDER_WORKER_MAX_DATA_BYTES": "4096", "GIRDER_WORKER_HTTP_ALLOWED_HOSTS": "127.0.0.1",
         "GIRDER_WORKER_ALLOW_PYTHON_MODE": "true"},
        "-P", "solo", "-Q", girder_queue, plugins=(),
    )  # fmt: skip
    app = client_app(env)
    app.conf.task_default_queue = girder_queue
    from girder_worker.analysis.tasks import run

    def failure(source, target=None):
        given = {"name": "d", "type": "string", "format": "text", **({"target": target} if target else {})}
        task = {"mode": "python", "script": "n = 1", "inputs": [given],
                "outputs": [{"name": "n", "type": "integer", "format": "integer"}]}  # fmt: skip
        result = run.apply_async([task, {"d": source}], girder_api_url=girder.api_url, girder_client_token=girder.token)
        with pytest.raises(AnalysisError) as failed:
            result.get(timeout=60)
        return str(failed.value)

    for target in (None, "filepath"):  # into memory, onto disk
        assert failure({"mode": "girder", "id": uploaded["_id"], "format": "text"}, target) == (
            f"input 'd': Girder file {uploaded['_id']} sends more than GIRDER_WORKER_MAX_DATA_BYTES (4,096 bytes); "
            "the rest was not read (raise it on the worker to fetch larger inputs)"
        )
    message = failure({"mode": "girder", "id": folder["_id"], "resource_type": "folder", "format": "text"}, "filepath")
    assert message.startswith(f"input 'd': Girder folder {folder['_id']} holds ")
    assert message.endswith("more than GIRDER_WORKER_MAX_DATA_BYTES (4,096); nothing was downloaded "
                            "(raise it on the worker to fetch larger inputs)")  # fmt: skip

    elsewhere = {"mode": "girder", "api_url": "http://girder.internal:8080/api/v1", "token": "t0k3n", "id": "0" * 24}
    assert failure({**elsewhere, "format": "text"}) == (
        "input 'd': host 'girder.internal' of http://girder.internal:8080/api/v1 is not in "
        "GIRDER_WORKER_HTTP_ALLOWED_HOSTS (127.0.0.1); add it there in the worker's environment to allow it"
    )

"""Our girder_worker inside the real Girder 5 server: a task published while Girder answers
a REST request gets its job from Girder's own Job model, for the requesting user.

The Girder test server runs with our packages (see ``girder_server.py``); its test-only
route ``POST /gw_test/publish`` calls ``apply_async`` of a gwtest task inside the
request, as large_image and slicer_cli_web do.
"""

from __future__ import annotations

import io
import subprocess
import uuid
from typing import Any

import pytest
from girder_client import GirderClient

from .girder_jobs import (
    SUCCESS,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    on_queue,
    wait_for,
)
from .girder_server import GirderServer, ensure_girder_venv
from .test_builtin_girder import girder_client


@pytest.fixture
def user(girder: GirderServer) -> dict[str, Any]:
    """A new user (not an admin) with a file and an empty item in their Private folder."""
    admin = girder_client(girder)  # also makes the assetstore
    login = f"user{uuid.uuid4().hex[:10]}"
    password = "a password of the test user"
    admin.post(
        "user",
        parameters={
            "login": login,
            "email": f"{login}@example.com",
            "firstName": "Test",
            "lastName": "User",
            "password": password,
            "admin": "false",
        },
    )
    gc = GirderClient(apiUrl=girder.api_url)
    gc.authenticate(login, password)
    me = gc.get("user/me")
    private = next(gc.listFolder(me["_id"], parentFolderType="user", name="Private"))
    item = gc.createItem(private["_id"], "input")
    data = b"a file uploaded by the user\n"
    uploaded = gc.uploadFile(item["_id"], io.BytesIO(data), "input.txt", len(data), parentType="item")
    output = gc.createItem(private["_id"], "output")
    return {"gc": gc, "id": me["_id"], "file_id": uploaded["_id"], "data": data, "output_item": output["_id"]}


def publish_in_girder(girder: GirderServer, user: dict[str, Any], **params: str) -> dict[str, Any]:
    status, body = girder.call("POST", "gw_test/publish", params, token=user["gc"].token)
    assert status == 200, body
    return body


def test_a_task_published_in_a_girder_request_gets_a_job_of_the_requesting_user(
    girder, girder_queue, env_for, start_worker, user
):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue))
    answer = publish_in_girder(
        girder, user, task="copy_file", queue=girder_queue, fileId=user["file_id"], itemId=user["output_item"]
    )

    # result.job, in the request, is the job Girder made: the user's, named by the task id.
    job = answer["job"]
    assert job["userId"] == user["id"]
    assert job["celeryTaskId"] == answer["taskId"]
    stored = girder.get_job(job["_id"])  # the admin sees args and kwargs
    assert stored["title"] == "gwtest.copy_file"
    assert (stored["type"], stored["handler"]) == ("celery", "celery_handler")
    assert stored["args"] == [f"GirderFileId('{user['file_id']}')"]

    # Our worker reports to it; the user sees it end SUCCESS, and the hook uploaded the copy.
    girder.wait_for_status(job["_id"], SUCCESS, timeout=60)
    assert user["gc"].get(f"job/{job['_id']}")["status"] == SUCCESS
    [copy] = user["gc"].listFile(user["output_item"])
    assert copy["name"] == "copy.txt"
    content = io.BytesIO()
    user["gc"].downloadFile(copy["_id"], content)
    assert content.getvalue() == user["data"]


def test_a_task_published_in_a_girder_request_can_create_its_childrens_jobs(
    girder, girder_queue, env_for, start_worker, user
):
    """The message carries the worker API URL and a token of the user that may create jobs."""
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue))
    answer = publish_in_girder(girder, user, task="spawn_child", queue=girder_queue)
    parent = answer["job"]
    assert (parent["title"], parent["userId"]) == ("parent job", user["id"])
    girder.wait_for_status(parent["_id"], SUCCESS, timeout=60)

    def child_job() -> list[dict[str, Any]]:
        return [j for j in user["gc"].get("job", parameters={"limit": 50}) if j["title"] == "child job"]

    [child] = wait_for(child_job, timeout=30, what="the child task's job")
    assert child["parentId"] == parent["_id"]
    girder.wait_for_status(child["_id"], SUCCESS, timeout=60)


def test_a_girder_server_without_a_broker_says_so_once(tmp_path):
    """GIRDER_WORKER_BROKER unset in a Girder server: one warning naming the variable and the fix."""
    python = ensure_girder_venv()
    proc = subprocess.run(
        [str(python), "-I", "-c", "import girder.models; import girder_worker.app; import girder_plugin_worker"],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "GIRDER_WORKER_BROKER is not set" in line]
    assert len(warnings) == 1, proc.stderr
    assert "embedded broker in" in warnings[0]
    assert "Set GIRDER_WORKER_BROKER" in warnings[0]

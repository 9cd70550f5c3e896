"""Transforms and the original's wire format on real workers and real brokers: messages
shaped as the original girder-worker writes them run; messages naming anything but a
registered transform are refused with one line, and nothing they name runs or is imported."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import jsonpickle
import pytest
from girder_client import GirderClient

from girder_worker_utils.transforms.girder_io import GirderFileId, GirderUploadToItem

from .conftest import purge_queue
from .girder_jobs import girder_queue_fixture, on_queue  # noqa: F401  (the girder_queue fixture)
from .test_bad_messages import QUIET, lines_about, publish_raw
from .test_builtin_girder import girder_client

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def original_body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A body as the original girder-worker's ``girder_io`` serializer writes it."""
    return jsonpickle.encode((args, kwargs, EMBED), keys=True).encode()


def test_an_original_message_with_a_plugins_transform_and_result_hook_runs(
    broker, env_for, start_worker, client_app, unique_queue, tmp_path
):
    env = env_for(broker)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        cleaned = tmp_path / "cleaned"
        task_id = str(uuid.uuid4())
        # The plugin's classes, as jsonpickle writes them where a publisher has them installed.
        suffix = "gwtesttasks.transforms.Suffix"
        body = {
            "py/tuple": [
                {
                    "py/tuple": [
                        {"py/object": suffix, "text": "hello", "cleanup_marker": str(cleaned)},
                        {"py/tuple": [1, 2]},
                    ]
                },
                {"k": [{"py/object": suffix, "text": "x", "cleanup_marker": None}]},
                EMBED,
            ]
        }
        hook = {"py/object": "gwtesttasks.transforms.Shout", "failure_marker": None}
        publish_raw(app, unique_queue, {"task": "gwtest.echo", "id": task_id, "girder_result_hooks": [hook]}, body)
        result = app.AsyncResult(task_id).get(timeout=30)
        assert result == "[['HELLO!', (1, 2)], {'K': ['X!']}]"  # the hook upper-cased the str of the result
        assert cleaned.read_text() == "cleaned"
        assert "Traceback" not in worker.log
    finally:
        purge_queue(app, unique_queue)


REFUSED = {
    "py/reduce os.system": (
        lambda marker: {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": [f"touch {marker}"]}]},
        "'os.system' (py/reduce)",
    ),
    "subprocess.Popen": (
        lambda marker: {"py/object": "subprocess.Popen", "args": ["touch", str(marker)]},
        "'subprocess.Popen' (py/object) is not a registered transform class",
    ),
    "a class of an installed package": (
        lambda marker: {"py/object": "xmlrpc.server.SimpleXMLRPCServer", "path": str(marker)},
        "'xmlrpc.server.SimpleXMLRPCServer' (py/object) is not a registered transform class",
    ),
    "py/type": (lambda marker: {"py/type": "smtplib.SMTP"}, "'smtplib.SMTP' (py/type)"),
}


def test_refused_objects_are_one_line_a_failed_result_and_nothing_runs(
    broker, env_for, start_worker, client_app, unique_queue, tmp_path
):
    env = env_for(broker)
    # solo: the task that reports sys.modules runs in the process that decoded the messages
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    named = ["xmlrpc.server", "smtplib", "ftplib"]
    try:
        # What the worker process had imported before (Celery's command imports its plugins,
        # flower's among them, and with it http.server): decoding must import nothing more.
        before = app.send_task("gwtest.modules", args=[named], queue=unique_queue).get(timeout=30)
        assert not all(before.values()), before
        for case, (make, says) in REFUSED.items():
            marker = tmp_path / f"marker-{uuid.uuid4().hex[:6]}"
            task_id = str(uuid.uuid4())
            offset = len(worker.log)
            body = {"py/tuple": [{"py/tuple": [make(marker)]}, {}, EMBED]}
            publish_raw(app, unique_queue, {"task": "gwtest.touch", "id": task_id}, body)
            bad = app.AsyncResult(task_id)
            with pytest.raises(Exception, match="nothing was imported or constructed"):
                bad.get(timeout=30)
            assert bad.state == "FAILURE", case
            about_it = lines_about(worker.log, offset, task_id)
            assert len(about_it) == 1, (case, about_it)
            assert f"rejected task gwtest.touch[{task_id}]: its body names {says}" in about_it[0], case
            assert "transform classes of the plugins the worker loads" in about_it[0]
            assert not marker.exists(), case

        hook_id = str(uuid.uuid4())
        publish_raw(
            app,
            unique_queue,
            {"task": "gwtest.add", "id": hook_id, "girder_result_hooks": [{"py/object": "ftplib.FTP"}]},
            [[1, 2], {}, EMBED],
        )
        with pytest.raises(Exception, match=re.escape("'ftplib.FTP' (py/object)")):
            app.AsyncResult(hook_id).get(timeout=30)

        after = app.send_task("gwtest.modules", args=[named], queue=unique_queue).get(timeout=30)
        assert after == before
        assert "Traceback" not in worker.log
    finally:
        purge_queue(app, unique_queue)


@pytest.fixture
def girder_file(girder) -> dict[str, Any]:
    """A file and an empty item in the admin's Public folder of the test Girder."""
    gc = girder_client(girder)
    public = next(gc.listFolder(girder.user_id, parentFolderType="user", name="Public"))
    folder = gc.createFolder(public["_id"], f"transforms-{uuid.uuid4().hex[:8]}")
    item = gc.createItem(folder["_id"], "input")
    data = b"the content of a Girder file\n"
    uploaded = gc.uploadFile(item["_id"], io.BytesIO(data), "input.txt", len(data), parentType="item")
    out = gc.createItem(folder["_id"], "output")
    return {"gc": gc, "file_id": uploaded["_id"], "data": data, "output_item": out["_id"]}


@pytest.mark.parametrize("shape", ["ours", "original"])
def test_girder_file_in_and_upload_hook_out_on_the_real_girder(
    shape, girder, girder_queue, env_for, start_worker, client_app, girder_file, tmp_path
):
    env = env_for("rabbitmq")
    start_worker(env, *on_queue(girder_queue, "prefork"))
    app = client_app(env)
    gc = girder_file["gc"]
    token = girder.token
    if shape == "ours":  # our client: no client in the transform; the run's own (URL and token) is used
        result = app.send_task(
            "gwtest.read_text",
            args=[GirderFileId(girder_file["file_id"])],
            queue=girder_queue,
            headers={"girder_api_url": girder.api_url, "girder_client_token": token},
        )
        assert result.get(timeout=60) == girder_file["data"].decode()
        write = app.send_task(
            "gwtest.write_text",
            args=["uploaded by a hook"],
            queue=girder_queue,
            headers={
                "girder_api_url": girder.api_url,
                "girder_client_token": token,
                "girder_result_hooks": [GirderUploadToItem(girder_file["output_item"])],
            },
        )
        assert write.get(timeout=60) == girder_file["output_item"]
    else:  # the original: a whole GirderClient in each transform, jsonpickle-shaped
        read_id, write_id = str(uuid.uuid4()), str(uuid.uuid4())
        client = GirderClient(apiUrl=girder.api_url)
        client.token = token
        publish_raw(
            app,
            girder_queue,
            {"task": "gwtest.read_text", "id": read_id},
            original_body((GirderFileId(girder_file["file_id"], gc=client),), {}),
        )
        assert app.AsyncResult(read_id).get(timeout=60) == girder_file["data"].decode()
        hook = jsonpickle.pickler.Pickler(keys=True).flatten(GirderUploadToItem(girder_file["output_item"], gc=client))
        publish_raw(
            app,
            girder_queue,
            {"task": "gwtest.write_text", "id": write_id, "girder_result_hooks": [hook]},
            original_body(("uploaded by a hook",), {}),
        )
        assert app.AsyncResult(write_id).get(timeout=60) == girder_file["output_item"]
    files = list(gc.listFile(girder_file["output_item"]))
    assert [f["name"] for f in files] == ["result.txt"]
    content = io.BytesIO()
    gc.downloadFile(files[0]["_id"], content)
    assert content.getvalue() == b"uploaded by a hook"


def test_a_published_transform_is_stored_readably_in_its_girder_job(girder, girder_queue, env_for, client_app):
    app = client_app(env_for("rabbitmq"))
    result = app.send_task(
        "gwtest.read_text",
        args=[GirderFileId("0123456789abcdef01234567")],
        queue=girder_queue,
        headers={"girder_api_url": girder.api_url, "girder_client_token": girder.token},
    )
    job = result.job
    assert job is not None
    assert job["celeryTaskId"] == result.id
    assert girder.get_job(job["_id"])["args"] == ["GirderFileId('0123456789abcdef01234567')"]

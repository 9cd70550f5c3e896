"""A fleet that mixes the original girder-worker 5.0.21 and ours runs every job.

Each test publishes with one side and runs the task on the other, on the shared RabbitMQ
with the ``rpc://`` result backend (the original's defaults), in a queue of its own. The
original's client and worker run in their own venv (the ``original`` fixture); ours run
from the test environment, where gwexample provides ``gwexample.analyses.tasks.fibonacci``
and the original's venv has a plugin that registers a task of the same name.
"""

from __future__ import annotations

import json
import re

import pytest

FIBONACCI = "gwexample.analyses.tasks.fibonacci"

# The first test of a session may build a cached venv from the package index (minutes).
pytestmark = pytest.mark.timeout(900)


def test_the_originals_delay_runs_on_our_worker(original, rabbitmq_env, start_worker, queue):
    worker = start_worker(rabbitmq_env, "-P", "solo", "-Q", queue, "-n", f"{queue}@%h", plugins=())
    # The original's Task.apply_async encodes with its girder_io serializer (jsonpickle).
    out = original.run(
        "import json\n"
        "from girder_worker.task import Task\n"
        "from gwinterop.tasks import fibonacci\n"
        "assert isinstance(fibonacci, Task), type(fibonacci).__mro__\n"
        f"result = fibonacci.apply_async((10,), queue={queue!r})\n"
        "print(json.dumps({'id': result.id, 'result': result.get(timeout=60), 'state': result.state}))\n"
    )
    found = json.loads(out.stdout.splitlines()[-1])
    assert (found["result"], found["state"]) == (55, "SUCCESS")
    assert f"Task {FIBONACCI}[{found['id']}] succeeded" in worker.log


def test_our_delay_runs_on_the_originals_worker(original, rabbitmq_env, client_app, queue):
    import gwexample.analyses.tasks  # noqa: F401  (registers the task with every app)

    worker = original.start_worker(queue)
    app = client_app(rabbitmq_env)
    result = app.tasks[FIBONACCI].apply_async((10,), queue=queue)
    assert result.get(timeout=60) == 55
    assert result.state == "SUCCESS"
    worker.wait_for_log(re.escape(f"Task {FIBONACCI}[{result.id}] succeeded"), timeout=10)


def test_the_originals_girder_transforms_run_on_our_worker(
    original, rabbitmq_env, start_worker, queue, girder, girder_file
):
    """What a Girder server with the original publishes: a GirderFileId argument and a
    GirderUploadToItem result hook, each with its whole GirderClient (jsonpickle)."""
    start_worker(rabbitmq_env, "-P", "prefork", "-c", "1", "-Q", queue, "-n", f"{queue}@%h")
    out = original.run(
        "import json\n"
        "from girder_client import GirderClient\n"
        "from girder_worker.utils.transforms.girder_io import GirderFileId, GirderUploadToItem\n"
        "from gwinterop.tasks import read_text, write_text\n"
        f"gc = GirderClient(apiUrl={girder.api_url!r})\n"
        f"gc.token = {girder.token!r}\n"
        f"read = read_text.apply_async((GirderFileId({girder_file['file_id']!r}, gc=gc),), queue={queue!r})\n"
        "write = write_text.apply_async(\n"
        f"    ('uploaded by a hook',), queue={queue!r},\n"
        f"    girder_result_hooks=[GirderUploadToItem({girder_file['output_item']!r}, gc=gc)])\n"
        "print(json.dumps([read.get(timeout=60), write.get(timeout=60)]))\n"
    )
    read, write = json.loads(out.stdout.splitlines()[-1])
    assert read == girder_file["data"].decode()
    assert write == girder_file["output_item"]
    files = list(girder_file["gc"].listFile(girder_file["output_item"]))
    assert [f["name"] for f in files] == ["result.txt"]


def test_our_girder_transforms_run_on_the_originals_worker(
    original, rabbitmq_env, client_app, queue, girder, girder_file
):
    """Our client writes transforms in the original's format: its worker restores and runs them."""
    from girder_client import GirderClient

    from girder_worker_utils.transforms.girder_io import GirderFileId, GirderUploadToItem

    original.start_worker(queue)
    app = client_app(rabbitmq_env)
    gc = GirderClient(apiUrl=girder.api_url)
    gc.token = girder.token
    read = app.send_task("gwtest.read_text", args=[GirderFileId(girder_file["file_id"], gc=gc)], queue=queue)
    write = app.send_task(
        "gwtest.write_text",
        args=["uploaded by a hook"],
        queue=queue,
        headers={"girder_result_hooks": [GirderUploadToItem(girder_file["output_item"], gc=gc)]},
    )
    assert read.get(timeout=60) == girder_file["data"].decode()
    assert write.get(timeout=60) == girder_file["output_item"]
    files = list(girder_file["gc"].listFile(girder_file["output_item"]))
    assert [f["name"] for f in files] == ["result.txt"]

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

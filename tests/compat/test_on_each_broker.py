"""One real worker per broker on the installed Celery/kombu: what every release must keep working.

``hatch run compat:test`` runs this on each supported Celery/kombu minor and
Python version; ``hatch test`` on the newest. One worker per broker covers every
feature, to keep a matrix entry short.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TaskRevokedError

from ..conftest import wait_for
from ..integration.test_bad_messages import QUIET, publish_raw

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def wait_state(result, state, timeout=30.0):
    return wait_for(lambda: result.state == state, timeout, f"task {result.id} to be {state} (is {result.state})")


def test_one_worker_on_each_broker(broker, env_for, start_worker, queue_app, unique_queue, tmp_path):
    """A round trip, the girder_io wire format, a time limit, revoke with and without
    terminate, and a killed pool process delivered again, on one prefork worker."""
    env = {
        **env_for(broker),
        "GIRDER_WORKER_DELIVERY": "at-least-once",
        "GIRDER_WORKER_MAX_DELIVERIES": "2",
        "GIRDER_WORKER_LEASE_SECONDS": "2",
    }
    worker = start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue, *QUIET)
    app = queue_app(env)

    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5

    # A message as the original girder-worker's girder_io serializer writes it: JSON,
    # with a plugin's transform class as jsonpickle's py/object.
    task_id = str(uuid.uuid4())
    cleaned = tmp_path / "cleaned"
    suffix = {"py/object": "gwtesttasks.transforms.Suffix", "text": "hello", "cleanup_marker": str(cleaned)}
    body = {"py/tuple": [{"py/tuple": [suffix, {"py/tuple": [1, 2]}]}, {}, EMBED]}
    publish_raw(app, unique_queue, {"task": "gwtest.echo", "id": task_id}, body)
    assert app.AsyncResult(task_id).get(timeout=30) == [["hello!", [1, 2]], {}]
    assert cleaned.read_text() == "cleaned"

    # The time limit, and revoke with and without terminate, side by side.
    limited = app.send_task("gwtest.tl_poll", args=[str(tmp_path / "limited")], queue=unique_queue, soft_time_limit=1)
    wait_state(limited, "FAILURE")
    assert isinstance(limited.result, SoftTimeLimitExceeded)
    assert limited.result.args == ("soft time limit (1 s) exceeded",)
    assert (tmp_path / "limited").read_text() == "soft time limit (1 s) exceeded"
    assert f"[{limited.id}]: soft time limit (1 s) exceeded; the task was cancelled" in worker.log

    polite, stubborn = tmp_path / "polite", tmp_path / "stubborn"
    cooperative = app.send_task("gwtest.cooperative", args=[str(polite)], queue=unique_queue)
    ignores = app.send_task("gwtest.stubborn", args=[str(stubborn)], queue=unique_queue)
    wait_for(lambda: polite.exists() and stubborn.exists(), what="both tasks to start")
    cooperative.revoke()
    ignores.revoke(terminate=True)
    wait_state(cooperative, "REVOKED")
    wait_state(ignores, "REVOKED", timeout=20)
    assert polite.read_text() == "saw cancel"
    assert stubborn.read_text() == "started"
    with pytest.raises(TaskRevokedError):
        ignores.get(timeout=5)

    # The delivery policy: a pool process killed mid-task, the task run again.
    log = tmp_path / "runs.txt"

    def starts() -> list[int]:
        lines = log.read_text().splitlines() if log.exists() else []
        return [int(line.split()[2]) for line in lines if line.startswith(f"start {result.id} ")]

    result = app.send_task("gwtest.delivery.record", args=[str(log), 2.0], queue=unique_queue)
    first = wait_for(starts, what="the first run")[0]
    os.kill(first, signal.SIGKILL)
    second = result.get(timeout=60)
    assert second != first
    assert starts() == [first, second]
    worker.wait_for_log(rf"record\[{result.id}\] was lost .*; delivered again \(delivery 2 of 2\)")
    assert app.send_task("gwtest.add", args=[2, 2], queue=unique_queue).get(timeout=30) == 4

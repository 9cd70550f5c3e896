"""A task id reused after its task finished: another call runs as a new task (one line
in the log), the broker's redelivery of the same message is still dropped."""

from __future__ import annotations

import time
import uuid

import pytest

from ..conftest import wait_for
from .conftest import purge_queue
from .test_bad_messages import QUIET


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_a_reused_id_runs_as_a_new_task_and_says_so(broker, env_for, start_worker, client_app, unique_queue):
    env = env_for(broker)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    task_id = str(uuid.uuid4())
    try:
        assert app.send_task("gwtest.add", args=[1, 2], queue=unique_queue, task_id=task_id).get(timeout=30) == 3
        time.sleep(1)  # the worker releases leases every 0.2 s: the task is then finished for every worker

        same = app.send_task("gwtest.add", args=[1, 2], queue=unique_queue, task_id=task_id)  # a redelivery's twin
        wait_for(lambda: "after it finished; the duplicate was dropped" in worker.log, what="the duplicate's line")
        assert same.get(timeout=30) == 3

        app.AsyncResult(task_id).forget()  # a client reusing an id forgets the old result first
        other = app.send_task("gwtest.add", args=[20, 22], queue=unique_queue, task_id=task_id)
        assert other.get(timeout=30) == 42
        [line] = [line for line in worker.log.splitlines() if "reuses the id of a task that finished" in line]
        assert f"task gwtest.add[{task_id}] reuses the id" in line
        assert "it runs as a new task, and its result replaces the old one" in line
    finally:
        purge_queue(app, unique_queue)

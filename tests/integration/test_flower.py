"""Flower, the monitor Celery operators know, started with ``girder-worker flower``,
shows the truth about our tasks: a cancelled task ends REVOKED there, not STARTED
for ever. Flower 2 is installed in the test environment (hatch.toml)."""

from __future__ import annotations

import socket
import time
from typing import Any

import requests

from girder_worker import cancel

from ..conftest import WorkerProcess, clean_env, wait_for
from .test_bad_messages import QUIET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_flower_shows_a_cancelled_task_revoked(env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = env_for("redis")
    start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue, "-E", *QUIET)
    port = _free_port()
    flower_env = {**clean_env(env), "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = WorkerProcess(["flower", "--address=127.0.0.1", f"--port={port}"], flower_env, tmp_path / "flower.log")
    flower.start()
    try:
        flower.wait_for_log(r"Visit me at", timeout=60)
        app = queue_app(env)
        marker = tmp_path / "marker"

        def shown(task_id: str) -> dict[str, Any]:
            answer = requests.get(f"http://127.0.0.1:{port}/api/task/info/{task_id}", timeout=5)
            return answer.json() if answer.status_code == 200 else {}

        # Flower listens for events in a thread of its own, from some time after its web
        # server is up: events sent before then are lost to it. A task it shows finished
        # proves it is listening.
        def listening() -> bool:
            probe = app.send_task("gwtest.add", args=[1, 1], queue=unique_queue)
            probe.get(timeout=30)
            return bool(wait_for_shown(probe.id))

        def wait_for_shown(task_id: str) -> bool:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                if shown(task_id).get("state") == "SUCCESS":
                    return True
                time.sleep(0.1)
            return False

        wait_for(listening, timeout=60, what="Flower to listen for the worker's events")
        running = app.send_task("gwtest.cooperative", args=[str(marker)], queue=unique_queue)
        wait_for(lambda: shown(running.id).get("state") == "STARTED", what="Flower to show the task STARTED")

        cancel(running, app=app)

        info = wait_for(lambda: (i := shown(running.id)).get("state") == "REVOKED" and i, what="Flower: REVOKED")
        assert isinstance(info, dict)
        assert info["name"] == "gwtest.cooperative"
        assert running.state == "REVOKED"
    finally:
        flower.stop(timeout=10)

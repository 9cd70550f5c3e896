"""A client reads a running task's state and progress from the result backend, without Girder."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis

from ..conftest import REDIS_URL, wait_for


def _info_is(result: Any, expected: dict[str, Any]) -> bool:
    return result.state == "PROGRESS" and result.info == expected


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_a_client_sees_started_then_progress_then_the_result(
    broker, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker)
    start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    control = tmp_path / "control"
    control.mkdir()

    result = app.send_task("gwtest.progress_steps", args=[str(control), 2], queue=unique_queue)

    wait_for((control / "at-0").exists, what="the task to start")
    assert result.state == "STARTED"
    (control / "go-0").touch()
    wait_for(lambda: _info_is(result, {"current": 1, "total": 2, "message": "step 1"}), what="step 1")
    for name in ("go-1", "go-2"):
        (control / name).touch()
    assert result.get(timeout=30) == 2
    assert result.state == "SUCCESS"


def _record_states(task_id: str, states: list[dict[str, Any]], ready: threading.Event) -> None:
    # Celery's Redis backend publishes every state it stores on the task's key.
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(f"celery-task-meta-{task_id}")
    ready.set()
    for message in pubsub.listen():
        if message["type"] != "message":
            continue
        meta = json.loads(message["data"])
        states.append(meta)
        if meta["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
            break
    pubsub.close()
    client.close()


def test_progress_reaches_the_backend_at_a_bounded_rate_and_its_last_value_before_the_end(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for("redis")
    start_worker(env, "-P", "threads", "-Q", unique_queue)
    app = queue_app(env)
    control = tmp_path / "control"
    control.mkdir()
    task_id = "progress-" + unique_queue
    states: list[dict[str, Any]] = []
    ready = threading.Event()
    recorder = threading.Thread(target=_record_states, args=(task_id, states, ready), daemon=True)
    recorder.start()
    ready.wait(10)

    # The task declares progress_interval=3600: of its 10,000 reports, the first is
    # written at once, the others wait; the last one is written before its result.
    result = app.send_task("gwtest.progress_burst", args=[str(control), 10_000], queue=unique_queue, task_id=task_id)

    wait_for((control / "burst").exists, what="the burst")
    assert result.state == "PROGRESS"
    assert result.info == {"current": 1, "total": 10_000, "message": "item 1"}
    (control / "go").touch()
    assert result.get(timeout=30) == 10_000
    recorder.join(timeout=10)
    assert [
        (s["status"], (s["result"] or {}).get("current") if s["status"] == "PROGRESS" else None) for s in states
    ] == [
        ("STARTED", None),
        ("PROGRESS", 1),
        ("PROGRESS", 10_000),
        ("SUCCESS", None),
    ]

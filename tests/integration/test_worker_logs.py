"""What an operator reads in a real worker's log: task output, cancels, JSON lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from girder_worker import cancel

from ..conftest import wait_for


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_task_output_is_logged_at_info_with_the_task_id(pool, env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = env_for("redis")
    worker = start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)
    app = queue_app(env)

    result = app.send_task("gwtest.chatter", args=[str(tmp_path / "marker"), 0.1], queue=unique_queue)

    assert result.get(timeout=30) >= 1
    worker.wait_for_log(rf"\[[^]]+: INFO/[^]]+\] gwtest\.chatter\[{result.id}\]: chatter done")
    assert "WARNING" not in worker.log.split(result.id, 1)[1]


def test_a_cancel_is_logged_when_it_arrives_and_when_the_task_sees_it(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for("embedded")
    worker = start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    marker = tmp_path / "marker"
    result = app.send_task("gwtest.cooperative", args=[str(marker)], queue=unique_queue)
    wait_for(marker.exists, what="the task to start")

    cancel(result, app=app, reason="operator request")

    wait_for(lambda: result.state == "REVOKED", what="REVOKED")
    arrived = worker.wait_for_log(
        rf"cancel of task gwtest\.cooperative\[{result.id}\] arrived \(operator request\): it has 30 s to stop"
    )
    saw = worker.wait_for_log(
        rf"task gwtest\.cooperative\[{result.id}\] saw its cancel \(operator request\) and stopped, "
        r"\d+\.\d+ s after the cancel arrived"
    )
    revoked = worker.wait_for_log(rf"Task gwtest\.cooperative\[{result.id}\] revoked: operator request")
    assert arrived.start() < saw.start()
    assert revoked.start() > arrived.start()
    assert "ignored" not in worker.log


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_json_log_lines_name_the_task_and_mask_secrets(env_for, start_worker, queue_app, unique_queue, tmp_path):
    env = {**env_for("redis"), "GIRDER_WORKER_LOG_FORMAT": "json"}
    worker = start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)

    chatter = app.send_task("gwtest.chatter", args=[str(tmp_path / "marker"), 0.1], queue=unique_queue)
    failing = app.send_task("gwtest.fail", args=["see http://girder/api?token=s3cretvalue"], queue=unique_queue)
    chatter.get(timeout=30)
    wait_for(lambda: failing.state == "FAILURE", what="the failure")
    # Its ERROR line, not just any line naming it: the "received" line comes first, and the
    # pool process may write the ERROR line after the FAILURE state is visible.
    wait_for(
        lambda: any(e.get("task_id") == failing.id and e["level"] == "ERROR" for e in _json_lines(worker.log)),
        what="its ERROR log line",
    )

    entries = _json_lines(worker.log)
    non_json = [line for line in worker.log.splitlines() if line.strip() and not line.startswith("{")]
    done = next(e for e in entries if e["message"] == "chatter done")
    assert done["level"] == "INFO"
    assert done["task_name"] == "gwtest.chatter"
    assert done["task_id"] == chatter.id
    assert set(done) >= {"time", "level", "logger", "message", "task_name", "task_id"}
    failed = [e for e in entries if e.get("task_id") == failing.id and e["level"] == "ERROR"]
    assert failed, entries[-5:]
    assert "token=***" in failed[0]["message"] + failed[0].get("exception", "")
    assert "s3cretvalue" not in worker.log
    assert any(e["message"].endswith("ready.") for e in entries)
    # The banner is printed, not logged; every logged line is JSON.
    assert not [line for line in non_json if chatter.id in line or failing.id in line], non_json

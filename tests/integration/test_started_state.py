"""A worker's runs are STARTED for clients, with Celery's meta, as the lease claim stores it.

On Redis the claim's script writes it under the result key; on the embedded broker the
claim keeps it in the lease database and the result backend reads it from there while
the run is in progress (no result file is written for it).
"""

from __future__ import annotations

import os

import pytest

from ..conftest import wait_for


@pytest.mark.parametrize(("broker", "pool"), [("redis", "solo"), ("embedded", "solo"), ("embedded", "prefork")])
def test_a_worker_shows_a_run_started_with_its_pid_and_hostname_then_its_result(
    env_for, start_worker, queue_app, unique_queue, tmp_path, broker, pool
):
    env = env_for(broker)
    start_worker(env, "-P", pool, *(["-c", "1"] if pool == "prefork" else []), "-Q", unique_queue)
    app = queue_app(env)
    control = tmp_path / "control"
    control.mkdir()

    result = app.send_task("gwtest.progress_steps", args=[str(control), 1], queue=unique_queue)

    wait_for((control / "at-0").exists, what="the task to start")
    assert result.state == "STARTED"
    assert set(result.info) == {"pid", "hostname"}
    assert isinstance(result.info["pid"], int)
    assert "@" in result.info["hostname"]
    if broker == "embedded":  # kept by the lease claim: no result file yet
        assert not [name for name in os.listdir(os.fsdecode(app.backend.path)) if result.id in name]
    for name in ("go-0", "go-1"):
        (control / name).touch()
    assert result.get(timeout=30) == 1
    assert result.state == "SUCCESS"

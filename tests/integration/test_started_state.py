"""A solo worker's runs are STARTED for clients, with Celery's meta, as the claim stores it."""

from __future__ import annotations

from ..conftest import wait_for


def test_a_solo_worker_shows_a_run_started_with_its_pid_and_hostname_then_its_result(
    env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for("redis")
    start_worker(env, "-P", "solo", "-Q", unique_queue)
    app = queue_app(env)
    control = tmp_path / "control"
    control.mkdir()

    result = app.send_task("gwtest.progress_steps", args=[str(control), 1], queue=unique_queue)

    wait_for((control / "at-0").exists, what="the task to start")
    assert result.state == "STARTED"
    assert set(result.info) == {"pid", "hostname"}
    assert isinstance(result.info["pid"], int)
    assert "@" in result.info["hostname"]
    for name in ("go-0", "go-1"):
        (control / name).touch()
    assert result.get(timeout=30) == 1
    assert result.state == "SUCCESS"

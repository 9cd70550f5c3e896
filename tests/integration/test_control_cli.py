"""Celery's own command line against a girder-worker worker: `celery control revoke ID`
cancels a running task, as `app.control.revoke(ID)` does."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import clean_env, wait_for
from .conftest import purge_queue
from .test_bad_messages import QUIET


def test_celery_control_revoke_from_the_command_line_cancels_a_running_task(
    env_for, start_worker, client_app, unique_queue, tmp_path
):
    env = env_for("redis")
    start_worker(env, "-P", "threads", "-c", "2", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    marker = tmp_path / "marker"
    try:
        result = app.send_task("gwtest.cooperative", args=[str(marker)], queue=unique_queue)
        wait_for(lambda: marker.exists() and "started" in marker.read_text(), what="the task to start")

        cli = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "girder_worker.app", "control", "revoke", result.id],
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert f"tasks {result.id} flagged as revoked" in cli.stdout
        assert "Error" not in cli.stdout + cli.stderr
        wait_for(lambda: result.state == "REVOKED", what="the task to end REVOKED")
        assert "saw cancel" in marker.read_text()
    finally:
        purge_queue(app, unique_queue)

"""The Time limits page's example task, on a real worker."""

from __future__ import annotations

import re

from celery.exceptions import SoftTimeLimitExceeded

from ..conftest import broker_env
from ..integration.conftest import close_app
from .test_examples import DOCS, EXAMPLES


def test_the_time_limited_task_saves_its_work_at_the_soft_limit_and_fails(start_worker, tmp_path):
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    env = {**broker_env("embedded", tmp_path / "data"), "PYTHONPATH": str(EXAMPLES)}
    worker = start_worker(env, "-P", "prefork", "-c", "1", "--include", "time_limited_tasks", plugins=())
    app = create_app(read_config(env))
    try:
        result = app.send_task("time_limited_tasks.render", args=[1000, str(tmp_path)])

        result.get(timeout=60, propagate=False)
    finally:
        close_app(app)

    assert result.state == "FAILURE"
    assert isinstance(result.result, SoftTimeLimitExceeded)
    assert result.result.args == ("soft time limit (2 s) exceeded",)
    summary = (tmp_path / "partial.txt").read_text()
    assert re.fullmatch(r"soft time limit \(2 s\) exceeded: saved \d+ of 1000 frames\n", summary)
    assert (
        f"task time_limited_tasks.render[{result.id}]: soft time limit (2 s) exceeded; the task was cancelled, "
        "it is terminated at its hard time limit (4 s)" in worker.log
    )


def test_the_page_shows_the_messages_the_worker_writes():
    page = (DOCS / "timelimits.rst").read_text()
    for shown in (
        "girder-worker: soft time limit (2 s) exceeded; the task stopped",
        "girder-worker: hard time limit (4 s) exceeded; the task was terminated",
        "soft time limit (2 s) exceeded; the task was cancelled, it is terminated at its hard time limit (4 s)",
        "its soft time limit (60 s) is\nnot below its hard time limit (60 s), so it never sees the soft one; set\n"
        "soft_time_limit below time_limit",
    ):
        assert shown in page

"""The monitoring page shows the log lines a real worker writes for a cancel."""

from __future__ import annotations

import re

from girder_worker import cancel

from ..conftest import broker_env, wait_for
from ..integration.conftest import close_app
from .test_examples import DOCS

PAGE = DOCS / "monitoring.rst"


def test_the_cancel_lines_of_the_page_are_what_the_worker_logs(start_worker, tmp_path):
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    env = broker_env("embedded", tmp_path / "data")
    worker = start_worker(env, "-P", "prefork", "-c", "1", plugins=())
    app = create_app(read_config(env))
    try:
        result = app.send_task("gwexample.analyses.tasks.wait", args=[600])
        wait_for(lambda: result.state == "STARTED", what="the task to start")
        cancel(result, app=app)
        wait_for(lambda: result.state == "REVOKED", what="REVOKED")
        worker.wait_for_log(rf"Task \S+\[{result.id}\] revoked")
    finally:
        close_app(app)

    shown = re.findall(
        r"^     (cancel of task .*|task .* saw its cancel .*|Task .* revoked: .*)$", PAGE.read_text(), re.M
    )
    assert len(shown) == 3
    for line in shown:
        pattern = re.escape(line).replace(re.escape("9f27e906-..."), re.escape(result.id))
        pattern = pattern.replace(re.escape("0.004"), r"\d+\.\d+")
        # The worker's main process logs "saw its cancel" once the pool process's result
        # reaches it, which can be a moment after the pool process logged "revoked".
        worker.wait_for_log(pattern, timeout=15)
    assert "ignored" not in worker.log

"""A failed run's stored exception and traceback hold no token: not the run's own Girder
token, not a ``?token=`` of a URL its message names."""

from __future__ import annotations

import pytest

from .conftest import purge_queue
from .test_bad_messages import QUIET

RUN_TOKEN = "run-token-1234567890abcdef"
URL_TOKEN = "url-token-abcdef1234567890"


def test_a_failed_runs_result_and_traceback_hold_no_token(env_for, start_worker, client_app, unique_queue):
    env = env_for("redis")
    worker = start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        result = app.send_task(
            "gwtest.leak",
            args=[f"http://127.0.0.1:9/api/v1/file/1/download?token={URL_TOKEN}&x=1"],
            queue=unique_queue,
            headers={"girder_client_token": RUN_TOKEN},
        )
        with pytest.raises(RuntimeError) as info:
            result.get(timeout=30)

        message = str(info.value)
        assert message == "GET http://127.0.0.1:9/api/v1/file/1/download?token=***&x=1 failed for token ***"
        stored = app.backend.get_task_meta(result.id)
        for place in (str(stored["result"]), str(stored.get("traceback")), worker.log):
            assert RUN_TOKEN not in place
            assert URL_TOKEN not in place
    finally:
        purge_queue(app, unique_queue)

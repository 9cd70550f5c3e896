"""A task id that is no safe name is refused with one line on every broker, and
the worker serves on (on the embedded broker such an id named files: it made the
worker exit)."""

from __future__ import annotations

from celery.exceptions import InvalidTaskError

from .conftest import purge_queue
from .test_bad_messages import GOOD_ARGS, QUIET, publish_raw

BAD_IDS = {
    "a slash": "a/b",
    "dot dot": "..",
    "a hidden name": ".lease",
    "a NUL": "x\x00y",
    "a newline": "x\ny",
    "256 bytes": "é" * 128,
}


def test_unsafe_task_ids_are_refused_with_one_line(broker, env_for, start_worker, client_app, unique_queue):
    env = env_for(broker)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        for case, task_id in BAD_IDS.items():
            offset = len(worker.log)
            publish_raw(app, unique_queue, {"task": "gwtest.add", "id": task_id}, GOOD_ARGS)
            good = app.send_task("gwtest.add", args=[2, 3], queue=unique_queue)

            assert good.get(timeout=30) == 5, case
            said = [line for line in worker.log[offset:].splitlines() if "so it is not a safe task id" in line]
            assert len(said) == 1, (case, said)
            if "\n" not in task_id:  # (escaping control characters in log lines is another change's)
                assert said[0].startswith("["), said
                assert "rejected task gwtest.add[" in said[0], said
            assert said[0].endswith(
                "so it is not a safe task id; the message was discarded (give tasks Celery's own ids (uuid4), "
                "or plain names)"
            ), said
            if case in ("a slash", "dot dot", "a hidden name"):
                assert "contains '/' or starts with '.'" in said[0]
                assert app.AsyncResult(task_id).state == "FAILURE", case
                assert isinstance(app.AsyncResult(task_id).result, InvalidTaskError)
        assert worker.proc.poll() is None
        assert "Traceback" not in worker.log
    finally:
        purge_queue(app, unique_queue)

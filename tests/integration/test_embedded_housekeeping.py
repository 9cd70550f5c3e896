"""A worker on the embedded broker sweeps expired results, cancellations and leases."""

from __future__ import annotations

import json
import os
import time

from girder_worker._config import embedded_settings

from ..conftest import broker_env

DAY = 86400.0
QUIET = ("--without-mingle", "--without-gossip")


def aged(path, content, days):
    path.write_bytes(content)
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def test_a_worker_sweeps_what_expired_at_start_and_keeps_the_rest(tmp_path, start_worker, client_app, unique_queue):
    data = tmp_path / "data"
    embedded_settings(data)
    old_result = aged(data / "results" / "celery-task-meta-old", b"{}", 2)
    old_cancel = aged(data / "cancelled" / "old-task", b"", 8)
    old_lease = aged(data / "leases" / "old-task.json", json.dumps({"state": "done"}).encode(), 2)
    # A task that has run for two days, on a worker whose heartbeat is fresh.
    holder = {"state": "running", "holder": "other@host/1", "deliveries": 1, "attempt": 0, "message": {}}
    running = aged(data / "leases" / "long-task.json", json.dumps(holder).encode(), 2)
    (data / "leases" / "alive").mkdir(mode=0o700)
    aged(data / "leases" / "alive" / "other@host_1", b"", -1)
    set_aside = aged(data / "quarantine" / "1-ab-bad.celery.msg", b"garbage", 30)

    env = broker_env("embedded", data)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    # (The worker forgets the old cancellation when it reads the recent ones, at start.)
    worker.wait_for_log(r"embedded broker: removed expired files \(1 in leases/, 1 in results/\)")
    app = client_app(env)
    result = app.send_task("gwtest.add", args=[1, 2], queue=unique_queue)
    assert result.get(timeout=60) == 3

    assert not old_result.exists()
    assert not old_cancel.exists()
    assert not old_lease.exists()
    assert json.loads(running.read_bytes())["state"] == "running"
    assert "cannot reach the lease store" not in worker.log
    assert set_aside.exists()
    assert app.AsyncResult(result.id).result == 3  # a fresh result stays

"""A worker on the embedded broker sweeps expired results, cancellations and leases."""

from __future__ import annotations

import json
import os
import time

from girder_worker._config import embedded_settings
from girder_worker.delivery._leases import SqliteLeaseStore

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
    # A lease file of a release before the lease database, finished two days ago.
    old_lease_file = aged(data / "leases" / "old-task.json", json.dumps({"state": "done"}).encode(), 2)
    leases = SqliteLeaseStore(data / "leases")
    leases.claim("old-task", "gone@host/2", {"body": "[]"})
    leases.release([("old-task", 0)], "gone@host/2")
    # A task that has run for two days, on a worker whose heartbeat is fresh.
    leases.claim("long-task", "other@host/1", {"body": "[]"})
    leases.heartbeat("other@host/1", 3600)
    with leases._transaction() as db:  # both two days old
        db.execute("UPDATE lease SET changed = ?", (time.time() - 2 * DAY,))
    set_aside = aged(data / "quarantine" / "1-ab-bad.celery.msg", b"garbage", 30)

    env = broker_env("embedded", data)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    # (The worker forgets the old cancellation when it reads the recent ones, at start.)
    worker.wait_for_log(
        r"embedded broker: removed what expired \(1 in leases/, 1 in results/, 1 in the lease database\)"
    )
    app = client_app(env)
    result = app.send_task("gwtest.add", args=[1, 2], queue=unique_queue)
    assert result.get(timeout=60) == 3

    assert not old_result.exists()
    assert not old_cancel.exists()
    assert not old_lease_file.exists()
    # The finished task is forgotten (its message is a new task now); the running one is not.
    assert leases.claim("old-task", "me@host/3", {"body": "[]"}).deliveries == 1
    assert leases.claim("long-task", "me@host/3", {"body": "[]"}).duplicate_of == "running"
    assert "cannot reach the lease store" not in worker.log
    assert set_aside.exists()
    assert app.AsyncResult(result.id).result == 3  # a fresh result stays

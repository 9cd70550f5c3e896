"""The embedded backend's housekeeping: what expires like its Redis counterpart, and what stays."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from girder_worker._config import embedded_settings
from girder_worker.broker._housekeeping import result_expiry, sweep

NOW = 2_000_000_000.0
HOUR, DAY = 3600.0, 86400.0


def put(path, content=b"{}", age=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (NOW - age, NOW - age))
    return path


def lease(state):
    return json.dumps({"state": state, "holder": "w@h/1", "deliveries": 1}).encode()


def test_what_expired_goes_and_the_rest_stays(tmp_path):
    data = tmp_path / "data"
    embedded_settings(data)
    expired = [
        put(data / "results" / "celery-task-meta-old", age=DAY + HOUR),
        put(data / "cancelled" / "old-cancel", b"", age=8 * DAY),
        put(data / "leases" / "done.json", lease("done"), age=DAY + HOUR),  # finished before leases/done/
        put(data / "leases" / "done" / "finished.json", lease("done"), age=DAY + HOUR),
        put(data / "leases" / "done" / ".finished.json.0123456789ab.part", age=DAY + HOUR),
        put(data / "leases" / "lost.json", lease("lost"), age=DAY + HOUR),
        put(data / "leases" / "garbage.json", b"not json", age=DAY + HOUR),
        put(data / "leases" / "alive" / "gone@host_1", b"", age=DAY + HOUR),
        put(data / "results" / ".celery-task-meta-x.0123456789ab.part", age=DAY + HOUR),
        put(data / "broker" / "queue" / ".m.celery.msg.0123456789ab.part", age=DAY + HOUR),
    ]
    kept = [
        put(data / "results" / "celery-task-meta-new", age=DAY - HOUR),
        put(data / "cancelled" / "new-cancel", b"", age=6 * DAY),
        put(data / "leases" / "running.json", lease("running"), age=30 * DAY),  # a long task
        put(data / "leases" / "recent.json", lease("done"), age=DAY - HOUR),
        put(data / "leases" / "done" / "recent.json", lease("done"), age=DAY - HOUR),
        put(data / "leases" / "alive" / "live@host_2", b"", age=-HOUR),  # runs out in an hour
        put(data / "leases" / ".lock", b"", age=30 * DAY),
        put(data / "quarantine" / "123-abc-bad.celery.msg", b"garbage", age=30 * DAY),
        put(data / "broker" / "queue" / "000000000000001_x.celery.msg", age=30 * DAY),
        put(data / "broker" / "control" / "celery.pidbox.exchange", b"[]", age=30 * DAY),
    ]
    (data / "results" / "link").symlink_to(kept[0])
    os.utime(data / "results" / "link", (NOW - 30 * DAY, NOW - 30 * DAY), follow_symlinks=False)

    done = sweep(data, result_expires=DAY, now=NOW)

    assert [p for p in expired if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    assert (data / "results" / "link").is_symlink()
    assert done.removed == {
        "broker/queue": 1, "cancelled": 1, "leases": 3, "leases/alive": 1, "leases/done": 2, "results": 2,
    }  # fmt: skip


def test_results_stay_when_result_expires_is_unset(tmp_path):
    old = put(tmp_path / "results" / "celery-task-meta-old", age=365 * DAY)
    sweep(tmp_path, result_expires=result_expiry(None), now=NOW)
    assert old.exists()
    sweep(tmp_path, result_expires=result_expiry(timedelta(days=400)), now=NOW)
    assert old.exists()
    sweep(tmp_path, result_expires=result_expiry(300 * DAY), now=NOW)
    assert not old.exists()


def test_result_expiry_reads_celerys_setting():
    assert result_expiry(timedelta(days=1)) == DAY
    assert result_expiry(60) == 60.0
    assert result_expiry(0) is None
    assert result_expiry(None) is None

"""Tasks for the delivery-policy tests: each run appends to a file, so runs can be counted."""

import os
import signal
import time
from pathlib import Path

import celery

from girder_worker_utils import task


def _log(path, line):
    with Path(path).open("a") as f:
        f.write(line + "\n")


def _run(task_id, path, seconds):
    _log(path, f"start {task_id} {os.getpid()}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    _log(path, f"end {task_id} {os.getpid()}")
    return os.getpid()


@task(name="gwtest.delivery.record", bind=True)
def record(self, path, seconds=0.0):
    """Append "start ID PID" to ``path``, run ``seconds``, append "end ID PID"."""
    return _run(self.request.id, path, seconds)


@task(name="gwtest.delivery.record_plain", bind=True, base=celery.Task)
def record_plain(self, path, seconds=0.0):
    """``record`` on Celery's own task class: its worker's main process claims its lease."""
    return _run(self.request.id, path, seconds)


@task(name="gwtest.delivery.retry_once", bind=True)
def retry_once(self, path):
    """``record`` that retries its first run; returns its retries and the girder_worker_* headers it got."""
    _log(path, f"start {self.request.id} {os.getpid()}")
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return [self.request.retries, sorted(k for k in self.request.headers or {} if k.startswith("girder_worker_"))]


@task(name="gwtest.delivery.record_once", bind=True, delivery="at-most-once")
def record_once(self, path, seconds=0.0):
    """``record``, declared at-most-once."""
    return _run(self.request.id, path, seconds)


@task(name="gwtest.delivery.crash", bind=True, max_deliveries=3)
def crash(self, path):
    """Append "start ID PID", then kill its own process, as the out-of-memory killer would."""
    _log(path, f"start {self.request.id} {os.getpid()}")
    os.kill(os.getpid(), signal.SIGKILL)

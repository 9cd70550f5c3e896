"""Tasks for the time limit tests: each shows what it saw of its limit."""

import os
import subprocess
import time
from pathlib import Path

from celery import current_app

from girder_worker_utils import task

# A plugin's app-wide limits, set the way the plugin guide shows (upper-case names);
# only for the workers a test starts with these variables.
for _name in ("TASK_TIME_LIMIT", "TASK_SOFT_TIME_LIMIT"):
    if os.environ.get(f"GWTEST_{_name}"):
        current_app.conf.update({_name: float(os.environ[f"GWTEST_{_name}"])})


def _mark(path, text):
    Path(path).write_text(text)


@task(name="gwtest.tl_polite", bind=True, soft_time_limit=1, time_limit=30)
def polite(self, marker):
    """Polls its cancel flag; writes what it read as the reason, then returns."""
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.01)
    _mark(marker, self.cancel_reason)
    return "stopped in time"


@task(name="gwtest.tl_poll", bind=True)
def poll(self, marker):
    """Like tl_polite without limits of its own: the call or the worker sets them."""
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.01)
    _mark(marker, self.cancel_reason)
    return "stopped in time"


@task(name="gwtest.tl_checks", bind=True, soft_time_limit=1)
def checks(self, marker):
    """Stops with check_cancelled(), recording the TaskCancelled it raised."""
    _mark(marker, "started")
    try:
        while True:
            self.check_cancelled()
            time.sleep(0.01)
    except Exception as exc:
        _mark(marker, f"{type(exc).__name__}: {exc}")
        raise


@task(name="gwtest.tl_ignores", bind=True, soft_time_limit=1, time_limit=2)
def ignores(self, marker, child_pidfile=None, busy=False):
    """Ignores its soft limit (swallowing any Exception), in C or spinning, beside a child."""
    if child_pidfile:
        child = subprocess.Popen(["sleep", "3600"])
        Path(child_pidfile).write_text(str(child.pid))
    _mark(marker, "started")
    try:
        if busy:
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                pass
        time.sleep(3600)
    except Exception:  # what swallows Celery's own SoftTimeLimitExceeded
        pass
    return "never"


@task(name="gwtest.tl_lingers", bind=True, soft_time_limit=1, cancel_grace_period=1)
def lingers(self, marker, busy=False):
    """A soft limit only: it ignores it and is terminated after its grace period."""
    _mark(marker, "started")
    if busy:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            pass
    time.sleep(3600)


@task(name="gwtest.tl_backwards", soft_time_limit=5, time_limit=5)
def backwards():
    """Its soft limit is not below its hard one: the worker warns at start."""
    return "never sees its soft limit"

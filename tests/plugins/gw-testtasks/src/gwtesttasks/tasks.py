"""Tasks for the integration tests: each does one observable thing."""

import os
import time
from pathlib import Path

from girder_worker_utils import task


@task(name="gwtest.add")
def add(x, y):
    return x + y


@task(name="gwtest.whoami", bind=True)
def whoami(self, pause=0.0):
    time.sleep(pause)
    return {"hostname": self.request.hostname, "pid": os.getpid()}


@task(name="gwtest.touch")
def touch(path):
    Path(path).write_text("ran\n")
    return path


@task(name="gwtest.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


# -- cancellation ------------------------------------------------------------------

import subprocess  # noqa: E402


def _mark(path, text):
    Path(path).write_text(text)


@task(name="gwtest.cooperative", bind=True)
def cooperative(self, marker):
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.002)
    _mark(marker, "saw cancel")
    return "stopped"


@task(name="gwtest.observe", bind=True)
def observe(self, marker):
    """Returns the wall-clock time at which it saw its cancel (for latency)."""
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.0005)
    seen = time.time()
    _mark(marker, repr(seen))
    return seen


@task(name="gwtest.raises_on_cancel", bind=True)
def raises_on_cancel(self, marker):
    _mark(marker, "started")
    while True:
        self.check_cancelled()
        time.sleep(0.002)


@task(name="gwtest.cleanup_on_cancel", bind=True)
def cleanup_on_cancel(self, marker, cleanup_file):
    self.on_cancel(lambda: Path(cleanup_file).write_text("cleaned up"))
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.002)
    return "stopped"


@task(name="gwtest.stubborn", bind=True, cancel_grace_period=1)
def stubborn(self, marker, child_pidfile=None, busy=False):
    """Ignores its cancel: sleeps (or spins) for an hour, optionally beside a child process."""
    if child_pidfile:
        child = subprocess.Popen(["sleep", "3600"])
        Path(child_pidfile).write_text(str(child.pid))
    _mark(marker, "started")
    if busy:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            pass
    time.sleep(3600)


@task(name="gwtest.work_for", bind=True)
def work_for(self, seconds):
    """Works ``seconds`` checking its cancel flag; returns 'done' if it was not cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if self.cancelled:
            return "cancelled"
    return "done"

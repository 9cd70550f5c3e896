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


@task(name="gwtest.gc_frozen")
def gc_frozen():
    """How many objects the garbage collector of the process that runs the task never scans."""
    import gc

    return gc.get_freeze_count()


@task(name="gwtest.runs_held_for_time_limits")
def runs_held_for_time_limits():
    """How many runs the time limits of the process that runs the task still hold
    (a solo or threads worker: its own); each is a run in progress, or one kept too long."""
    import gc

    return sum(1 for o in gc.get_objects() if type(o).__qualname__ == "_Run" and "timelimit" in type(o).__module__)


@task(name="gwtest.modules_loaded")
def modules_loaded(names):
    """Which of ``names`` the process that runs the task has imported."""
    import sys

    return [name for name in names if name in sys.modules]


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


# -- Girder jobs -------------------------------------------------------------------

import logging  # noqa: E402
import sys  # noqa: E402

_glog = logging.getLogger("girder_worker.gwtest")


@task(name="gwtest.report", bind=True)
def report(self, lines=3):
    """Prints, writes to stderr, logs and reports progress: everything a job log shows."""
    for i in range(lines):
        print(f"line {i}")
        self.progress(i + 1, total=lines, message=f"step {i + 1}")
    print("to stderr", file=sys.stderr)
    _glog.info("logged through girder_worker")
    self.job_manager.updateProgress(total=lines, current=lines, message="done")
    return lines


@task(name="gwtest.fail")
def fail(message="boom"):
    raise ValueError(message)


@task(name="gwtest.raises_after_cancel", bind=True)
def raises_after_cancel(self, marker):
    _mark(marker, "started")
    while not self.cancelled:
        time.sleep(0.002)
    raise RuntimeError("cleanup failed after the cancel")


@task(name="gwtest.chatter", bind=True)
def chatter(self, marker, seconds):
    """Prints a numbered line every 50 ms for ``seconds``; the marker says it began."""
    _mark(marker, "started")
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        print(f"chatter {n}")
        n += 1
        time.sleep(0.05)
    print("chatter done")
    return n


@task(name="gwtest.voice", bind=True)
def voice(self, name, mine, other, lines=40):
    """Waits for its partner task to start, then prints lines tagged with ``name``."""
    _mark(mine, "started")
    deadline = time.monotonic() + 30
    while not Path(other).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    for i in range(lines):
        print(f"{name} says {i}")
        _glog.info("%s logs %d", name, i)
        time.sleep(0.005)
    return name


@task(name="gwtest.progress_bar", bind=True)
def progress_bar(self, steps=50):
    for i in range(steps + 1):
        sys.stdout.write(f"\rprogress {i * 100 // steps}%")
        time.sleep(0.01)
    sys.stdout.write("\n")
    print("after the bar")
    return steps


@task(name="gwtest.flood", bind=True)
def flood(self, lines=100_000):
    """Writes ``lines`` log lines as fast as it can."""
    for i in range(lines):
        print(f"flood line {i} of {lines}")
    return lines


@task(name="gwtest.spawn_child", bind=True)
def spawn_child(self, queue, title="child job"):
    """Publishes gwtest.add from inside this run; returns the child's task id."""
    child = add.apply_async((2, 3), queue=queue, girder_job_title=title)
    return child.id

"""Tasks for the monitoring tests: progress a client reads, output an operator reads."""

import time
from pathlib import Path

from girder_worker_utils import task


def _wait_for(path):
    while not path.exists():
        time.sleep(0.005)


@task(name="gwtest.progress_steps", bind=True)
def progress_steps(self, control, steps=2):
    """Waits for the test's go-0, go-1, ... files; reports one step of progress after each."""
    control = Path(control)
    for i in range(steps + 1):
        (control / f"at-{i}").write_text("")
        _wait_for(control / f"go-{i}")
        if i < steps:
            self.progress(i + 1, total=steps, message=f"step {i + 1}")
    return steps


@task(name="gwtest.progress_burst", bind=True, progress_interval=3600)
def progress_burst(self, control, count):
    """Reports ``count`` steps as fast as it can, then waits for the test's go file."""
    control = Path(control)
    for i in range(1, count + 1):
        self.progress(i, total=count, message=f"item {i}")
    (control / "burst").write_text("")
    _wait_for(control / "go")
    return count

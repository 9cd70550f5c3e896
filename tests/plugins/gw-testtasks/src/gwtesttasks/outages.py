"""Tasks for the broker outage tests: each run appends lines to a file, so runs can be counted."""

import os
import time
from pathlib import Path

from girder_worker_utils import task


def _line(path, event, task_id):
    # One short write in append mode: lines of concurrent processes never interleave.
    with Path(path).open("a") as f:
        f.write(f"{event} {task_id} {os.getpid()}\n")


@task(name="gwtest.outage.job", bind=True)
def job(self, path, seconds=0.0):
    """Append "start ID PID" to ``path``, sleep ``seconds`` in short steps, append "finish ID PID"."""
    _line(path, "start", self.request.id)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    _line(path, "finish", self.request.id)
    return self.request.id

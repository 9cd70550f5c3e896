"""Tasks for the tests of girder_worker.testing: each reports what a plugin's task would."""

import time

from girder_worker_utils import task


@task(name="kit.count", bind=True)
def count(self, n, pause=0.0):
    """Counts to ``n``, printing and reporting progress at each step; stops when cancelled."""
    for i in range(n):
        if self.cancelled:
            print(f"cancelled at {i}")
            return i
        self.progress(i, total=n, message=f"step {i + 1}")
        print(f"step {i + 1}")
        time.sleep(pause)
    self.progress(n, total=n, message="counted")
    return n


@task(name="kit.write", bind=True)
def write(self, text):
    """Writes ``text`` to its job's log through the job manager."""
    self.job_manager.write(text)
    return len(text)


@task(name="kit.fail")
def fail(message):
    raise ValueError(message)

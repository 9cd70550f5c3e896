"""Tasks for the fair dispatch tests: each says where and when it ran."""

import time
from pathlib import Path

from girder_worker_utils import task


@task(name="gwtest.dispatch.timed", bind=True)
def timed(self, seconds, marker=None):
    """Sleep ``seconds``; write ``marker`` on start; return the worker and the run's wall-clock times."""
    started = time.time()
    if marker:
        Path(marker).write_text("started")
    time.sleep(seconds)
    return {"hostname": self.request.hostname, "started": started, "ended": time.time()}


@task(name="gwtest.dispatch.timed_late", bind=True, acks_late=True)
def timed_late(self, seconds, marker=None):
    """:func:`timed` with its message acknowledged only when it ends."""
    return timed.run(seconds, marker)

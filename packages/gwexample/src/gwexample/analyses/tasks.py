"""The example plugin's tasks."""

import time

from girder_worker_utils import task


@task
def fibonacci(n):
    """Return the nth Fibonacci number, computed the slow, recursive way."""
    if n == 1 or n == 2:
        return 1
    return fibonacci(n - 1) + fibonacci(n - 2)


@task(bind=True)
def wait(self, seconds):
    """Wait up to ``seconds``, stopping early when cancelled; return the seconds waited."""
    started = time.monotonic()
    while not self.cancelled and time.monotonic() - started < seconds:
        time.sleep(0.01)
    return round(time.monotonic() - started, 2)

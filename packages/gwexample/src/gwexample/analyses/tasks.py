"""The example plugin's tasks."""

from girder_worker_utils import task


@task
def fibonacci(n):
    """Return the nth Fibonacci number, computed the slow, recursive way."""
    if n == 1 or n == 2:
        return 1
    return fibonacci(n - 1) + fibonacci(n - 2)

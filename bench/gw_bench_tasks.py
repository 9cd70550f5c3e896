"""girder-worker's side of the benchmark's trivial task.

Declared the way a plugin declares its tasks. The worker imports this module
through ``celery worker``'s ``-I`` option, which ``girder-worker`` passes on;
the Fibonacci task comes from the gwexample plugin, loaded as usual.
"""

from girder_worker_utils import task


@task
def add(x, y):
    return x + y

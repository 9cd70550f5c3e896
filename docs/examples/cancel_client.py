"""Start gwexample's ``wait`` task for ten minutes, then cancel it.

Run a worker first (``girder-worker -l info``), with the same GIRDER_WORKER_*
environment.
"""

from celery.exceptions import TaskRevokedError

from girder_worker import cancel
from girder_worker.app import app  # noqa: F401  (configures the app the task binds to)
from gwexample.analyses.tasks import wait

result = wait.delay(600)
outcome = cancel(result)
print(outcome.sent)
try:
    result.get(timeout=60)
except TaskRevokedError:
    print(result.state)

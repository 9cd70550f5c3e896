"""Send fibonacci(26) to a girder-worker and print the answer (121393).

Run a worker first (``girder-worker -l info``) with the same GIRDER_WORKER_*
environment, then ``python example_client.py``.
"""

from girder_worker.app import app  # noqa: F401  (configures the app the task binds to)
from gwexample.analyses.tasks import fibonacci

if __name__ == "__main__":
    result = fibonacci.delay(26)
    print(result.get(timeout=60))

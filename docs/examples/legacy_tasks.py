"""Tasks in the original girder-worker style: on the app object itself.

A plugin written this way depends on girder-worker-core, not only on
girder-worker-utils.
"""

from girder_worker.app import app


@app.task(bind=True)
def count_words(self, lines):
    """Return how many words ``lines`` hold, stopping early if cancelled."""
    total = 0
    for line in lines:
        self.check_cancelled()  # raises TaskCancelled once the job is cancelled
        total += len(line.split())
    return total

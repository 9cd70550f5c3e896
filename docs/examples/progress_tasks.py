"""A task that reports its progress: to its Girder job when it has one, and to its result."""

import time

from girder_worker_utils import task


@task(name="progress_tasks.count", bind=True)
def count(self, items):
    for i in range(1, items + 1):
        time.sleep(0.1)  # the work on one item
        self.progress(i, total=items, message=f"item {i} of {items}")
    return items

"""The plugin's tasks. The worker imports this module because the plugin class names it."""

import time

from girder_worker_utils import task


@task(bind=True)
def square_values(self, values, seconds_per_value=0.0):
    """Square each of ``values``, reporting progress; stop early when cancelled.

    An example to replace with real work. ``bind=True`` makes ``self`` the task,
    which knows whether its job was cancelled (``self.cancelled``) and reports
    progress to it (``self.progress``). What the task prints goes to its job's log.
    """
    squares = []
    for i, value in enumerate(values):
        if self.cancelled:
            # Returning (or raising girder_worker_utils.TaskCancelled) ends the job CANCELED.
            print(f"cancelled after {i} of {len(values)} values")
            return squares
        self.progress(i, total=len(values), message=f"value {i + 1} of {len(values)}")
        print(f"squaring {value}")
        squares.append(value * value)
        time.sleep(seconds_per_value)
    self.progress(len(values), total=len(values), message="done")
    return squares

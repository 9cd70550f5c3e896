"""Names that tasks use, re-exported from :mod:`girder_worker_utils`.

Code written for the original girder-worker imports them from here.
"""

from girder_worker_utils import JobStatus, Task, TaskCancelled

__all__ = ["JobStatus", "Task", "TaskCancelled"]

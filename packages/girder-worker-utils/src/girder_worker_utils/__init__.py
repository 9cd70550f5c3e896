"""What a girder-worker task plugin imports.

The cancellable :class:`Task` base, the :func:`task` decorator, the plugin
interface :class:`GirderWorkerPluginABC`, :class:`JobStatus` with Girder's
transition tables, the :class:`JobManager` a task reports to its Girder job
through, and :class:`TaskCancelled`. Importing it has no side effects.
"""

from .__about__ import __version__
from ._cancel import CancelFlag
from ._decorator import PluginTask, task
from ._exceptions import TaskCancelled, TaskLost, TaskTerminated
from ._job import JobManager
from ._plugin import GirderWorkerPluginABC
from ._status import TRANSITIONS, JobStatus
from ._task import Task

__all__ = [
    "TRANSITIONS",
    "CancelFlag",
    "GirderWorkerPluginABC",
    "JobManager",
    "JobStatus",
    "PluginTask",
    "Task",
    "TaskCancelled",
    "TaskLost",
    "TaskTerminated",
    "__version__",
    "task",
]

"""The contract between girder-worker and a task plugin."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["GirderWorkerPluginABC"]


class GirderWorkerPluginABC(abc.ABC):
    """The interface a girder-worker plugin class implements.

    The worker finds plugin classes through the ``girder_worker_plugins`` entry
    point group, constructs each one with the Celery app as the first argument,
    and imports the modules that :meth:`task_imports` names, which registers their
    tasks::

        class MyPlugin(GirderWorkerPluginABC):
            def __init__(self, app, *args, **kwargs):
                self.app = app
                self.app.config.update({"TASK_TIME_LIMIT": 300})

            def task_imports(self):
                return ["my_plugin.tasks"]

    The constructor may change the app's configuration; it should not do slow or
    network work, because every worker start runs it.
    """

    app: Any

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.app = app

    def task_imports(self) -> list[str]:
        """Return the importable module paths that define this plugin's tasks.

        None by default, as in the original girder-worker: a plugin that only
        configures the app or connects signals (large_image's Girder 5 worker plugin,
        say) need not define it.
        """
        return []

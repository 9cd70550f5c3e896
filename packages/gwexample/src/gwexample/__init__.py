"""The example girder-worker plugin."""

from girder_worker_utils import GirderWorkerPluginABC

from .__about__ import __version__

__all__ = ["GWExamplePlugin", "__version__"]


class GWExamplePlugin(GirderWorkerPluginABC):
    def __init__(self, app, *args, **kwargs):
        self.app = app
        # Plugins may change the app's configuration; this one limits every task
        # to five minutes.
        self.app.config.update({"TASK_TIME_LIMIT": 300})

    def task_imports(self):
        return ["gwexample.analyses.tasks"]

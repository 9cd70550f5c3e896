"""gw-squares: a girder-worker plugin."""

from girder_worker_utils import GirderWorkerPluginABC

__all__ = ["GwSquaresPlugin"]


class GwSquaresPlugin(GirderWorkerPluginABC):
    """What the worker constructs at start-up: it names the modules that hold the tasks."""

    def __init__(self, app, *args, **kwargs):
        self.app = app
        # The place to configure the app for these tasks, for example to limit
        # each to an hour: self.app.config.update({"TASK_TIME_LIMIT": 3600})

    def task_imports(self):
        return ["gw_squares.tasks"]

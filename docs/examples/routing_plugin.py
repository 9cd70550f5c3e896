"""A plugin that sends its heavy tasks to a queue of their own."""

from girder_worker_utils import GirderWorkerPluginABC


class ThumbnailsPlugin(GirderWorkerPluginABC):
    def __init__(self, app, *args, **kwargs):
        self.app = app
        # Tasks of gw_thumbnails.heavy go to the "gpu" queue, the others to "celery".
        self.app.config.update({"TASK_ROUTES": {"gw_thumbnails.heavy.*": {"queue": "gpu"}}})

    def task_imports(self):
        return ["gw_thumbnails.light", "gw_thumbnails.heavy"]

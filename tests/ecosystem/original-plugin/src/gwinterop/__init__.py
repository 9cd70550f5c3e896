"""A plugin in the original girder-worker's style, for the interoperability tests."""

from girder_worker import GirderWorkerPluginABC


class InteropPlugin(GirderWorkerPluginABC):
    def __init__(self, app, *args, **kwargs):
        self.app = app

    def task_imports(self):
        return ["gwinterop.tasks"]

from girder_worker_utils import GirderWorkerPluginABC


class Plugin(GirderWorkerPluginABC):
    def __init__(self, app, *args, **kwargs):
        raise RuntimeError("the constructor of broken_ctor fails")

    def task_imports(self):
        return []

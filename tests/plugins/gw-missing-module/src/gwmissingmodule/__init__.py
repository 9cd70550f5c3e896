from girder_worker_utils import GirderWorkerPluginABC


class Plugin(GirderWorkerPluginABC):
    def task_imports(self):
        return ["gwmissingmodule.no_such_tasks"]

from girder_worker_utils import GirderWorkerPluginABC


class Plugin(GirderWorkerPluginABC):
    def task_imports(self):
        raise ValueError("task_imports of broken_task_imports fails")

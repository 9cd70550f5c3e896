from girder_worker_utils import GirderWorkerPluginABC


class SetuptoolsPlugin(GirderWorkerPluginABC):
    def task_imports(self):
        return ["gwsetuptools.tasks"]

from girder_worker_utils import GirderWorkerPluginABC


class TestTasksPlugin(GirderWorkerPluginABC):
    def task_imports(self):
        return [
            "gwtesttasks.tasks",
            "gwtesttasks.dispatch_tasks",
            "gwtesttasks.delivery",
            "gwtesttasks.timelimits",
            "gwtesttasks.outages",
            "gwtesttasks.transforms",
            "gwtesttasks.monitoring",
        ]

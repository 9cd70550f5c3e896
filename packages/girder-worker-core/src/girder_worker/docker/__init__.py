"""Docker containers as girder-worker tasks: ``docker_run`` and its transforms.

The ``docker`` plugin (entry point ``girder_worker_plugins: docker``) registers
:func:`girder_worker.docker.tasks.docker_run` and the reaper of containers that a
dead worker left behind. It needs the Docker SDK for Python (``pip install
'girder-worker-core[docker]'``); without it the plugin loads, registers nothing
and says so in one line. The transforms import without the SDK, so Girder can
publish ``docker_run`` with them.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from girder_worker_utils import GirderWorkerPluginABC

__all__ = ["DockerPlugin"]

logger = logging.getLogger("girder_worker.docker")


class DockerPlugin(GirderWorkerPluginABC):  # type: ignore[misc]
    """The girder-worker plugin of ``docker_run``."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.app = app
        self.available = importlib.util.find_spec("docker") is not None
        if not self.available:
            logger.info(
                "plugin 'docker': the Docker SDK for Python is not installed, so docker_run is not "
                "available; install girder-worker-core[docker] to run containers"
            )
            return
        from ._reaper import ReaperStep

        steps = getattr(app, "steps", None)
        if steps is not None and ReaperStep not in steps["worker"]:
            steps["worker"].add(ReaperStep)

    def task_imports(self) -> list[str]:
        return ["girder_worker.docker.tasks"] if self.available else []

"""A task for bench/docker.py: a container's stdout into a host file, as slicer_cli_web connects it."""

from __future__ import annotations

from typing import Any

from girder_worker.app import app
from girder_worker.docker.io import FDReadStreamConnector
from girder_worker.docker.tasks import DockerTask, _docker_run
from girder_worker.docker.transforms import ContainerStdOut
from tests.docker.streams import _Writer


@app.task(base=DockerTask, bind=True, name="bench.docker_tasks.stdout_to_file")
def stdout_to_file(task: Any, image: str, args: list[str], path: str, volumes: Any = None) -> Any:
    connector = FDReadStreamConnector(input=ContainerStdOut(), output=_Writer(path))
    return _docker_run(
        task, image, pull_image=False, container_args=args, volumes=volumes, stream_connectors=[connector]
    )

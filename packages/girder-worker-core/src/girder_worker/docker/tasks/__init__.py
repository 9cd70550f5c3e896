"""The ``docker_run`` task, its task class :class:`DockerTask`, and :func:`_docker_run`.

At the original girder-worker's import path: Girder plugins publish
``docker_run.delay(...)`` from here, and slicer_cli_web subclasses
:class:`DockerTask` and calls :func:`_docker_run`. The module imports without
the Docker SDK (Girder's side publishes only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from typing import Any

from girder_worker_utils import Task, task

from .._policy import DockerRunNotAllowed, run_scope
from ..transforms import DEFAULT_VOLUME_ATTR, TemporaryVolume, _TemporaryVolumeBase

__all__ = ["ContainerError", "DockerRunNotAllowed", "DockerTask", "_docker_run", "docker_run"]

logger = logging.getLogger("girder_worker.docker")


class _RequestDefaultTemporaryVolume(_TemporaryVolumeBase):
    """The directory behind ``TemporaryVolume.default`` for one run; mounted in every run."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self._make_paths()

    def transform(self, **kwargs: Any) -> Any:
        self._transformed = True
        return self.container_path


def _is_transform(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "transform", None))


class DockerTask(Task):  # type: ignore[misc]
    """The task class of ``docker_run``: volumes and stream transforms around the run.

    Before the run it makes the run's default temporary volume, turns a list of
    volume transforms into the Docker SDK's mounts, and replaces every transform
    argument by what it stands for; after the run (and the result hooks) it cleans
    the transforms up and removes the temporary volumes.
    """

    #: Seconds a cancelled run's container gets between SIGTERM and SIGKILL; None:
    #: the cancel grace period less a few seconds to remove it.
    container_stop_timeout: float | None = None

    def _maybe_transform_argument(self, arg: Any, **kwargs: Any) -> Any:
        if not _is_transform(arg):
            return arg
        return arg.transform(task=self, _default_temp_volume=self.request.__dict__.get(DEFAULT_VOLUME_ATTR), **kwargs)

    def _walk(self, obj: Any, seen: list[Any]) -> Any:
        if _is_transform(obj):
            seen.append(obj)
            return self._maybe_transform_argument(obj)
        if isinstance(obj, list):
            return [self._walk(item, seen) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item, seen) for item in obj)
        if isinstance(obj, dict):
            return {key: self._walk(value, seen) for key, value in obj.items()}
        return obj

    #: A refused run is expected, not a crash: Celery logs it in one line, without a traceback.
    throws = (DockerRunNotAllowed,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Temporary volumes made in this scope are the run's own: its container may mount them.
        with run_scope() as own:
            return self._call(own, *args, **kwargs)

    def _call(self, own: set[str], *args: Any, **kwargs: Any) -> Any:
        request = self.request
        default = _RequestDefaultTemporaryVolume()
        request.__dict__[DEFAULT_VOLUME_ATTR] = default
        temporary: list[Any] = [default]
        transformed: list[Any] = []
        try:
            volumes = kwargs.get("volumes") or {}
            if isinstance(volumes, list):
                temporary += [v for v in volumes if isinstance(v, TemporaryVolume)]
                mounts: dict[str, Any] = {}
                for volume in volumes:
                    self._maybe_transform_argument(volume)
                    mounts.update(volume._repr_json_())
                volumes = mounts
            kwargs["volumes"] = {**volumes, **default._repr_json_()}
            args = self._walk(list(args), transformed)
            kwargs = self._walk(kwargs, transformed)
            return super().__call__(*args, **kwargs)
        finally:
            for transform in transformed:
                with contextlib.suppress(Exception):
                    transform.cleanup()
            for volume in temporary:
                path = volume.__dict__.get("_host_path")
                # Only what the run made: a message sets a volume's attributes as it likes.
                if path and os.path.realpath(path) in own:
                    _remove_tree(path)
            request.__dict__.pop(DEFAULT_VOLUME_ATTR, None)


def _remove_tree(path: str | None) -> None:
    if not path or not os.path.isdir(path):
        return
    try:
        shutil.rmtree(path)
    except OSError as exc:
        # Files a container wrote as root, with a worker that is not root.
        logger.warning("could not remove the temporary volume %s: %s", path, exc)


def _docker_run(task: Any, image: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """Run a container for ``task``; what :func:`docker_run` does, for tasks that wrap it
    (slicer_cli_web's ``run`` calls it with its own task). The arguments are docker_run's."""
    # Imported at the first run (with the Docker SDK's helpers), not at the worker's start.
    from .._run import run

    return run(task, image, *args, **kwargs)


def __getattr__(name: str) -> Any:
    # ContainerError and stop_timeout live with the run; imported when first asked for.
    if name in ("ContainerError", "stop_timeout"):
        from .. import _run

        return getattr(_run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Bound to whichever app loads the plugin: importing girder_worker.app here would make
# the environment's app the current one in a process that made its own (eager tests).
@task(base=DockerTask, bind=True, name="girder_worker.docker.tasks.docker_run")
def docker_run(
    task: Any,
    image: str,
    pull_image: Any = True,
    entrypoint: Any = None,
    container_args: list[Any] | None = None,
    volumes: Any = None,
    remove_container: bool = True,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Run a Docker container as a task.

    Args:
        image: the image, such as ``"busybox:1.36"``.
        pull_image: ``True`` pulls it first (and runs the local copy if the registry
            cannot be reached), ``False`` never pulls, ``"if-not-present"`` pulls
            only an image this worker does not have.
        entrypoint: replaces the image's entrypoint (a string or a list).
        container_args: the command's arguments; transforms become container paths.
        volumes: a list of volume transforms, or the Docker SDK's mounts dict.
        remove_container: remove the container after the run.
        **kwargs: other Docker SDK ``containers.run`` options (``environment``,
            ``network_mode``, ``user``, ``stream_connectors``, ...).

    Returns:
        One ``None`` per result hook, which the hooks turn into what they upload.

    The container's output goes to the job log and the worker log; a non-zero exit
    fails the task with the exit code and the last lines; a cancel stops the
    container (see :attr:`DockerTask.container_stop_timeout`).
    """
    return _docker_run(task, image, pull_image, entrypoint, container_args, volumes, remove_container, **kwargs)


__all__ += ["stop_timeout"]

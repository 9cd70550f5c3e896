"""Arguments of ``docker_run`` that become paths and streams when the container starts.

Volumes say what the container sees of the host: :class:`BindMountVolume` a host
directory, :class:`TemporaryVolume` a fresh directory removed after the run
(:attr:`TemporaryVolume.default` is the one every run has), and
:class:`VolumePath` a file in either (the container's path as an argument, the
host's path in a result hook). Streams move bytes while the container runs:
:class:`NamedInputPipe` and :class:`NamedOutputPipe` are FIFOs in a volume, joined
to the worker's side by :class:`Connect`::

    from girder_worker.docker.tasks import docker_run
    from girder_worker.docker.transforms import (
        Connect, HostStdOut, NamedOutputPipe, TemporaryVolume, VolumePath)

    out = NamedOutputPipe("result")
    docker_run.delay(
        "busybox", container_args=["sh", "-c", "echo hello > $0", Connect(out, HostStdOut())])

The class and attribute names are the original girder-worker's, so each side
decodes the other's messages.
"""

from __future__ import annotations

import abc
import contextlib
import os
import stat
import sys
import tempfile
import uuid
from typing import Any

from girder_worker_utils.transform import Transform

__all__ = [
    "TEMP_VOLUME_MOUNT_PREFIX",
    "BindMountVolume",
    "ChunkedTransferEncodingStream",
    "Connect",
    "ContainerStdErr",
    "ContainerStdOut",
    "HostStdErr",
    "HostStdOut",
    "NamedInputPipe",
    "NamedOutputPipe",
    "NamedPipeBase",
    "TemporaryVolume",
    "VolumePath",
]

#: Where temporary volumes are mounted in the container.
TEMP_VOLUME_MOUNT_PREFIX = "/mnt/girder_worker"

#: The request attribute that holds a run's default temporary volume.
DEFAULT_VOLUME_ATTR = "_default_temp_volume"


def _maybe_transform(obj: Any, *args: Any, **kwargs: Any) -> Any:
    transform = getattr(obj, "transform", None)
    return transform(*args, **kwargs) if callable(transform) else obj


def _current_default_volume() -> Any:
    """The default temporary volume of the docker_run running in this thread, or None."""
    from celery import current_task

    request = getattr(current_task, "request", None)
    return request.__dict__.get(DEFAULT_VOLUME_ATTR) if request is not None else None


def _current_task_id() -> str | None:
    from celery import current_task

    return getattr(getattr(current_task, "request", None), "id", None)


class HostStdOut(Transform):
    """The worker's standard output, as the output of a :class:`Connect`."""

    def transform(self, **kwargs: Any) -> Any:
        from ..io import StdStreamWriter

        return StdStreamWriter(sys.stdout)


class HostStdErr(Transform):
    """The worker's standard error, as the output of a :class:`Connect`."""

    def transform(self, **kwargs: Any) -> Any:
        from ..io import StdStreamWriter

        return StdStreamWriter(sys.stderr)


class ContainerStdOut(Transform):
    """The container's standard output, as the input of a stream connector."""

    def transform(self, **kwargs: Any) -> Any:
        return self

    def open(self) -> None:
        """Nothing to open: the worker attaches to the container."""


class ContainerStdErr(Transform):
    """The container's standard error, as the input of a stream connector."""

    def transform(self, **kwargs: Any) -> Any:
        return self

    def open(self) -> None:
        """Nothing to open: the worker attaches to the container."""


class BindMountVolume(Transform):
    """A host directory mounted into the container; as an argument, its container path.

    Args:
        host_path: the directory on the worker's host.
        container_path: where the container sees it.
        mode: ``"rw"`` or ``"ro"``.
    """

    def __init__(self, host_path: str, container_path: str, mode: str = "rw") -> None:
        self._host_path = host_path
        self._container_path = container_path
        self.mode = mode

    @property
    def host_path(self) -> Any:
        return self._host_path

    @property
    def container_path(self) -> Any:
        return self._container_path

    def _repr_json_(self) -> dict[str, dict[str, str]]:
        """The Docker SDK's form of this mount: ``{host_path: {"bind": ..., "mode": ...}}``."""
        return {self.host_path: {"bind": self.container_path, "mode": self.mode}}

    def transform(self, **kwargs: Any) -> Any:
        from .._policy import host_path

        # Transforms read and write under host_path on the host, before any container runs.
        host_path(self.host_path, self.mode, verb="uses")
        return self.container_path

    def _repr_model_(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}: {self.host_path} -> {self.container_path}>"


class _TemporaryVolumeMetaClass(abc.ABCMeta):
    @property
    def default(cls) -> _DefaultTemporaryVolume:
        """The temporary volume every ``docker_run`` mounts: each run gets its own directory."""
        return _DefaultTemporaryVolume()


class _TemporaryVolumeBase(BindMountVolume):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transformed = False

    def _make_paths(self, host_dir: str | None = None, mode: int = 0o755) -> None:
        from .._policy import check_temporary_dir, own_volume

        if host_dir is not None:
            check_temporary_dir(host_dir, _current_task_id())
        if host_dir is not None and not os.path.exists(host_dir):
            os.makedirs(host_dir)
            os.chmod(host_dir, mode)  # exactly mode, whatever the umask
        self._host_path = tempfile.mkdtemp(dir=host_dir, prefix="girder_worker_")
        # The container may run as another user than the worker.
        os.chmod(self._host_path, 0o777 | stat.S_ISGID)  # noqa: S103
        own_volume(self._host_path)  # this run's container may mount it
        self._container_path = f"{TEMP_VOLUME_MOUNT_PREFIX}/{uuid.uuid4().hex}"


class TemporaryVolume(_TemporaryVolumeBase, metaclass=_TemporaryVolumeMetaClass):
    """A new directory on the host, mounted into the container and removed after the run.

    Args:
        host_dir: the directory to make it in (default: the system's temporary directory).
        mode: the mode ``host_dir`` gets if it has to be made.
    """

    def __init__(self, host_dir: str | None = None, mode: int = 0o777) -> None:
        super().__init__(None, None)
        self.host_dir = host_dir
        self._mode = mode
        self._instance = None
        self._transformed = False

    def transform(self, **kwargs: Any) -> Any:
        if not self.__dict__.get("_transformed"):
            self._transformed = True
            self._make_paths(self.__dict__.get("host_dir"), mode=self.__dict__.get("_mode", 0o777))
        return super().transform(**kwargs)


class _DefaultTemporaryVolume(TemporaryVolume):
    """Stands for the default temporary volume of the run that transforms it."""

    def transform(self, _default_temp_volume: Any = None, **kwargs: Any) -> Any:
        volume = _default_temp_volume or _current_default_volume()
        if volume is None:
            raise RuntimeError("TemporaryVolume.default can only be used in the arguments of a docker_run task")
        self._instance = volume
        self._transformed = True
        return volume.transform(**kwargs)

    def _resolved(self) -> Any:
        if self.__dict__.get("_instance") is None:
            self.transform()
        return self._instance

    @property
    def container_path(self) -> Any:
        return self._resolved().container_path

    @property
    def host_path(self) -> Any:
        return self._resolved().host_path


def _default_volume(volume: Any) -> Any:
    return _DefaultTemporaryVolume() if volume is None else volume


class NamedPipeBase(Transform):
    """A FIFO for streaming, at ``container_path``/``host_path`` or in ``volume``."""

    def __init__(
        self, name: str, container_path: str | None = None, host_path: str | None = None, volume: Any = None
    ) -> None:
        super().__init__()
        self._container_path: str | None = None
        self._host_path: str | None = None
        self._volume: Any = None
        if container_path is not None and host_path is not None:
            self._container_path = container_path
            self._host_path = host_path
        else:
            self._volume = _default_volume(volume)
        self.name = name

    def transform(self, **kwargs: Any) -> Any:
        if self._volume is not None:
            self._volume.transform(**kwargs)
        self._checked_host_path()

    def _checked_host_path(self) -> str:
        from .._policy import host_path, inside

        root = self._host_path if self._host_path is not None else self._volume.host_path
        if self._volume is None:
            root = host_path(root, "rw")
        return inside(root, self.name, "the named pipe")

    @property
    def container_path(self) -> str:
        root = self._container_path if self._container_path is not None else self._volume.container_path
        return os.path.join(root, self.name)

    @property
    def host_path(self) -> str:
        root = self._host_path if self._host_path is not None else self._volume.host_path
        return os.path.join(root, self.name)

    def cleanup(self, **kwargs: Any) -> None:
        from .._policy import DockerRunNotAllowed

        with contextlib.suppress(FileNotFoundError, RuntimeError, DockerRunNotAllowed):
            os.remove(self._checked_host_path())


class NamedInputPipe(NamedPipeBase):
    """A named pipe the container reads: data streams into the container."""

    def transform(self, **kwargs: Any) -> Any:
        from ..io import NamedPipe, NamedPipeWriter

        super().transform(**kwargs)
        return NamedPipeWriter(NamedPipe(self.host_path), self.container_path)


class NamedOutputPipe(NamedPipeBase):
    """A named pipe the container writes: data streams out of the container."""

    def transform(self, **kwargs: Any) -> Any:
        from ..io import NamedPipe, NamedPipeReader

        super().transform(**kwargs)
        return NamedPipeReader(NamedPipe(self.host_path), self.container_path)


class VolumePath(Transform):
    """A file in a volume: the container's path as an argument, the host's in a result hook.

    Args:
        filename: the path relative to the volume's root.
        volume: the volume (default: :attr:`TemporaryVolume.default`).
    """

    def __init__(self, filename: str, volume: Any = None) -> None:
        if os.path.isabs(filename):
            raise ValueError(f"VolumePath paths must be relative to a volume ({filename})")
        self.filename = filename
        self._volume = _default_volume(volume)

    def transform(self, *pargs: Any, **kwargs: Any) -> Any:
        from .._policy import inside

        self._volume.transform(**kwargs)
        if pargs:  # a result hook passes the task's result: the file is then read on the host
            return inside(self._volume.host_path, self.filename, "the volume path")
        return os.path.join(self._volume.container_path, self.filename)

    def _repr_model_(self) -> str:
        return f'<{type(self).__module__}.{type(self).__name__}: "{self.filename}">'


class Connect(Transform):
    """Joins a named pipe to a stream of the worker: ``Connect(NamedOutputPipe, writer)``
    or ``Connect(reader, NamedInputPipe)``; as an argument, the pipe's container path.
    """

    def __init__(self, input: Any, output: Any) -> None:
        super().__init__()
        self._input = input
        self._output = output

    def transform(self, **kwargs: Any) -> Any:
        from ..io import FDReadStreamConnector, FDWriteStreamConnector

        source = _maybe_transform(self._input, **kwargs)
        sink = _maybe_transform(self._output, **kwargs)
        if isinstance(self._output, NamedInputPipe):
            return FDWriteStreamConnector(source, sink)
        if isinstance(self._input, NamedOutputPipe):
            return FDReadStreamConnector(source, sink)
        raise TypeError("Connect needs a NamedInputPipe as its output or a NamedOutputPipe as its input")

    def _repr_model_(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}>"


class ChunkedTransferEncodingStream(Transform):
    """An HTTP POST to ``url`` whose body is what is streamed to it (chunked encoding)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.url = url
        self.headers = headers or {}

    def transform(self, **kwargs: Any) -> Any:
        from ..io import ChunkedTransferEncodingStreamWriter

        return ChunkedTransferEncodingStreamWriter(self.url, self.headers)

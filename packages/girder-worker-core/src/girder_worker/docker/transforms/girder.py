"""Girder data in and out of a container: downloads into volumes, uploads from them.

:class:`GirderFileIdToVolume` (and the folder and item variants) download into a
volume and become the container's path; :class:`GirderUploadVolumePathToItem`
(and the folder and job-artifact variants) are result hooks that upload a
:class:`~girder_worker.docker.transforms.VolumePath` after the container exits;
:class:`GirderFileIdToStream` streams a file into a named pipe. Each uses the
Girder client it was given, or the running task's own. The original's names and
attributes, at its import path.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, TypeGuard

from girder_worker_utils.transform import Transform
from girder_worker_utils.transforms.girder_io import (
    GirderClientTransform,
    GirderUploadJobArtifact,
    GirderUploadToFolder,
    GirderUploadToItem,
)

from .._policy import DockerRunNotAllowed, host_path, inside
from . import Connect, NamedOutputPipe, _default_volume, _maybe_transform

__all__ = [
    "GirderFileIdToStream",
    "GirderFileIdToVolume",
    "GirderFolderIdToVolume",
    "GirderItemIdToVolume",
    "GirderUploadVolumePathJobArtifact",
    "GirderUploadVolumePathToFolder",
    "GirderUploadVolumePathToItem",
    "ProgressPipe",
    "setPermissions",
]


def setPermissions(path: str, dirmode: int = 0o777, filemode: int = 0o644) -> None:  # noqa: N802
    """Let a container that runs as another user read what was downloaded for it."""
    if os.path.isfile(path):
        os.chmod(path, filemode)
        return
    for root, _dirs, files in os.walk(path):
        os.chmod(root, dirmode)
        for name in files:
            os.chmod(os.path.join(root, name), filemode)


def _removable(path: Any) -> TypeGuard[str]:
    """Whether cleanup may remove ``path``: it is in the run's volumes (a message sets the attribute as it likes)."""
    if not isinstance(path, str):
        return False
    try:
        host_path(path, verb="removes")
    except DockerRunNotAllowed:
        return False
    return True


def _safe_name(name: str, what: str) -> str:
    # A name comes from Girder; it must stay one path component inside the volume.
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"the Girder {what} name {name!r} cannot be a file name in a volume")
    return name


class ProgressPipe(Transform):
    """A named pipe whose lines of JSON (``{"current": 3, "total": 10}``) become job progress."""

    def __init__(self, name: str = ".girder_progress", volume: Any = None) -> None:
        self.name = name
        self._volume = _default_volume(volume)

    def transform(self, task: Any = None, **kwargs: Any) -> Any:
        from ..stream_adapter import JobProgressAdapter

        if task is None:
            from celery import current_task

            task = current_task
        self._volume.transform(**kwargs)
        adapter = JobProgressAdapter(getattr(task, "job_manager", None))
        return Connect(NamedOutputPipe(self.name, volume=self._volume), adapter).transform(**kwargs)


class GirderFileIdToStream(GirderClientTransform):
    """A Girder file, streamed (as the input of a :class:`Connect` to a named input pipe)."""

    def __init__(self, _id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.file_id = _id

    def transform(self, **kwargs: Any) -> Any:
        from ..io.girder import GirderFileStreamReader

        return GirderFileStreamReader(self.client, self.file_id)


class GirderFileIdToVolume(GirderClientTransform):
    """A Girder file downloaded into ``volume``; the container gets its path.

    Args:
        _id: the file's id.
        volume: where (default: the run's temporary volume).
        filename: the name to give it (default: its Girder name, in a directory named by its id).
    """

    def __init__(self, _id: str, volume: Any = None, filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._file_id = str(_id)
        self._volume = _default_volume(volume)
        self._filename = filename
        self._file_path: str | None = None

    def _paths(self, root: str) -> tuple[str, str]:
        if self._filename is not None:
            return self._filename, inside(root, self._filename, "the file name")
        name = _safe_name(self.client.getFile(self._file_id)["name"], "file")
        os.makedirs(inside(root, self._file_id, "the file id"), exist_ok=True)
        relative = os.path.join(self._file_id, name)
        return relative, inside(root, relative, "the file")

    def transform(self, **kwargs: Any) -> Any:
        self._volume.transform(**kwargs)
        relative, self._file_path = self._paths(self._volume.host_path)
        self.client.downloadFile(self._file_id, self._file_path)
        setPermissions(self._file_path)
        return os.path.join(self._volume.container_path, relative)

    def cleanup(self, **kwargs: Any) -> None:
        if _removable(self._file_path) and os.path.lexists(self._file_path):
            os.remove(self._file_path)

    def _repr_model_(self) -> str:
        name = f' -> "{self._filename}"' if self._filename else ""
        return f"<{type(self).__module__}.{type(self).__name__}: File ID={self._file_id}{name}>"


class GirderFolderIdToVolume(GirderClientTransform):
    """A Girder folder downloaded (recursively) into ``volume``; the container gets its path."""

    def __init__(self, _id: str, volume: Any = None, folder_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._folder_id = str(_id)
        self._volume = _default_volume(volume)
        self._folder_name = folder_name
        self._folder_path: str | None = None

    def transform(self, **kwargs: Any) -> Any:
        self._volume.transform(**kwargs)
        if self._folder_name is None:
            self._folder_name = _safe_name(self.client.getFolder(self._folder_id)["name"], "folder")
        relative = os.path.join(self._folder_id, self._folder_name)
        self._folder_path = inside(self._volume.host_path, relative, "the folder")
        os.makedirs(self._folder_path, exist_ok=True)
        self.client.downloadFolderRecursive(self._folder_id, self._folder_path)
        setPermissions(self._folder_path)
        return os.path.join(self._volume.container_path, relative)

    def cleanup(self, **kwargs: Any) -> None:
        if _removable(self._folder_path):
            shutil.rmtree(self._folder_path, ignore_errors=True)

    def _repr_model_(self) -> str:
        return f'<{type(self).__module__}.{type(self).__name__}: Folder ID={self._folder_id} -> "{self._folder_path}">'


class GirderItemIdToVolume(GirderClientTransform):
    """A Girder item downloaded into ``volume``; the container gets the path of what it holds."""

    def __init__(self, _id: str, volume: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._item_id = str(_id)
        self._volume = _default_volume(volume)
        self._item_path: str | None = None

    def transform(self, **kwargs: Any) -> Any:
        self._volume.transform(**kwargs)
        self._item_path = inside(self._volume.host_path, self._item_id, "the item id")
        os.makedirs(self._item_path, exist_ok=True)
        self.client.downloadItem(self._item_id, self._item_path)
        setPermissions(self._item_path)
        # downloadItem puts a one-file item's file, or a directory, under the destination.
        relative = os.path.join(self._item_id, sorted(os.listdir(self._item_path))[0])
        return os.path.join(self._volume.container_path, relative)

    def cleanup(self, **kwargs: Any) -> None:
        if _removable(self._item_path):
            shutil.rmtree(self._item_path, ignore_errors=True)

    def _repr_model_(self) -> str:
        return f'<{type(self).__module__}.{type(self).__name__}: Item ID={self._item_id} -> "{self._item_path}">'


class GirderUploadVolumePathToItem(GirderUploadToItem):
    """A result hook: uploads the file (or the files of the directory) at ``volumepath`` to an item."""

    def __init__(self, volumepath: Any, item_id: str, delete_file: bool = False, **kwargs: Any) -> None:
        super().__init__(str(item_id), delete_file, **kwargs)
        self._volumepath = volumepath

    def transform(self, *args: Any, **kwargs: Any) -> Any:
        return super().transform(_maybe_transform(self._volumepath, *args or (None,), **kwargs))


class GirderUploadVolumePathToFolder(GirderUploadToFolder):
    """A result hook: uploads the file or directory at ``volumepath`` to a folder."""

    def __init__(self, volumepath: Any, folder_id: str, delete_file: bool = False, **kwargs: Any) -> None:
        super().__init__(str(folder_id), delete_file, **kwargs)
        self._volumepath = volumepath

    def transform(self, *args: Any, **kwargs: Any) -> Any:
        return super().transform(_maybe_transform(self._volumepath, *args or (None,), **kwargs))


class GirderUploadVolumePathJobArtifact(GirderUploadJobArtifact):
    """A result hook: attaches what is at ``volumepath`` to the job as artifacts."""

    def __init__(
        self,
        volumepath: Any,
        job_id: str | None = None,
        name: str | None = None,
        upload_on_exception: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(str(job_id) if job_id is not None else None, name, **kwargs)
        self._volumepath = volumepath
        self._upload_on_exception = upload_on_exception

    def transform(self, *args: Any, **kwargs: Any) -> Any:
        return super().transform(_maybe_transform(self._volumepath, *args or (None,), **kwargs))

    def exception(self) -> None:
        if self._upload_on_exception:
            self.transform()

""":class:`GirderFileIdAllowDirect`: a Girder file read in place when the worker sees it."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from ..girder_io import GirderClientTransform

__all__ = ["GirderFileIdAllowDirect"]


class GirderFileIdAllowDirect(GirderClientTransform):
    """A Girder file the task reads: in place on shared storage when allowed, else downloaded.

    Girder passes the file's path in its assetstore as ``local_path``. When the
    worker's environment sets ``GW_DIRECT_PATHS`` (to anything non-empty) and that
    path is a file the worker can see, the task receives it as it is, with no copy:
    the task must treat it as read-only. Otherwise the file is downloaded into a
    temporary directory, keeping the extension of ``name``.

    ``GW_DIRECT_PATHS=true`` (any value that is not a path) allows any path, as the
    original did; absolute directories separated by ``:`` (``GW_DIRECT_PATHS=/assetstore``)
    allow only files inside them (symbolic links resolved), so a message cannot have
    the worker read its own files, such as ``/proc/self/environ``.

    large_image's conversions use it, so a site that mounts Girder's assetstore on
    its workers (the Digital Slide Archive does) converts without downloading.
    """

    def __init__(self, _id: str, name: str = "", local_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.file_id = _id
        self.file_name = name
        self.local_file_path = local_path

    def _repr_model_(self) -> str:
        if self.local_file_path:
            return f"{self.__class__.__name__}({self.file_id!r}, {self.file_name!r}, {self.local_file_path!r})"
        return f"{self.__class__.__name__}({self.file_id!r}, {self.file_name!r})"

    def _allowDirectPath(self) -> bool:  # noqa: N802  (the original's name)
        """Whether the worker's environment allows reading files in place."""
        return bool(os.environ.get("GW_DIRECT_PATHS"))

    def _inside_allowed_roots(self, path: str) -> bool:
        roots = [r for r in os.environ.get("GW_DIRECT_PATHS", "").split(os.pathsep) if os.path.isabs(r)]
        if not roots:
            return True
        real = os.path.realpath(path)
        return any(os.path.commonpath([real, os.path.realpath(root)]) == os.path.realpath(root) for root in roots)

    def transform(self) -> str:
        local = self.local_file_path
        if (
            isinstance(local, str)
            and local
            and self._allowDirectPath()
            and os.path.isfile(local)
            and self._inside_allowed_roots(local)
        ):
            self.temp_dir_path = None
            self.file_path = local
        else:
            self.temp_dir_path = tempfile.mkdtemp(prefix="girder_worker_")
            extension = os.path.splitext(str(self.file_name or ""))[1]
            self.file_path = os.path.join(self.temp_dir_path, f"{self.file_id}{extension}")
            self.client.downloadFile(self.file_id, self.file_path)
        return self.file_path

    def cleanup(self) -> None:
        path = getattr(self, "temp_dir_path", None)
        if path:
            shutil.rmtree(path, ignore_errors=True)

"""Transforms that need nothing but the worker's own file system."""

from __future__ import annotations

import shutil
import tempfile

from ..transform import Transform

__all__ = ["TemporaryDirectory"]


class TemporaryDirectory(Transform):
    """A new empty directory for the run, removed with everything in it afterwards."""

    def _repr_model_(self) -> str:
        return self.__class__.__name__

    def transform(self) -> str:
        self.temp_dir_path = tempfile.mkdtemp(prefix="girder_worker_")
        return self.temp_dir_path

    def cleanup(self) -> None:
        path = getattr(self, "temp_dir_path", None)
        if path:
            shutil.rmtree(path, ignore_errors=True)

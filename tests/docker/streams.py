"""Host-file streams for the tests' named pipes; the test worker imports this module.

girder-worker ships no transform that names a host file (a message could then read
or write any file of the worker), so the tests bring their own.
"""

from __future__ import annotations

from typing import Any

from girder_worker.docker.io import StreamReader, StreamWriter
from girder_worker_utils.transform import Transform


class _Reader(StreamReader):
    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close())

    def read(self, buf_len: int) -> bytes:
        return self._file.read(buf_len)

    def close(self) -> None:
        self._file.close()


class _Writer(StreamWriter):
    def __init__(self, path: str) -> None:
        self._file = open(path, "wb")  # noqa: SIM115

    def write(self, buf: bytes) -> int:
        return self._file.write(buf)

    def close(self) -> None:
        self._file.close()


class FileReader(Transform):
    def __init__(self, path: str) -> None:
        self.path = path

    def transform(self, **kwargs: Any) -> Any:
        return _Reader(self.path)


class FileWriter(Transform):
    def __init__(self, path: str) -> None:
        self.path = path

    def transform(self, **kwargs: Any) -> Any:
        return _Writer(self.path)

"""A Girder file as a stream (``GirderFileStreamReader``), at the original's import path."""

from __future__ import annotations

from typing import Any

from . import StreamReader

__all__ = ["GirderFileStreamReader"]


class GirderFileStreamReader(StreamReader):
    """Reads a Girder file's bytes as they download.

    The chunk size of the first ``read`` is the size of every chunk.
    """

    def __init__(self, client: Any, file_id: str) -> None:
        super().__init__()
        self._client = client
        self._file_id = file_id
        self._iter: Any = None
        self._left = b""

    def read(self, buf_len: int) -> bytes:
        if self._left:
            chunk, self._left = self._left[:buf_len], self._left[buf_len:]
            return chunk
        if self._iter is None:
            self._iter = iter(self._client.downloadFileAsIterator(self._file_id, buf_len))
        chunk = next(self._iter, b"")
        chunk, self._left = chunk[:buf_len], chunk[buf_len:]
        return bytes(chunk)

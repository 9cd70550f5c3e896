"""Adapters between the bytes a container produces and where they go.

:class:`DockerStreamPushAdapter` unpacks Docker's multiplexed attach stream (an
8-byte header before each frame) into the plain bytes of the frames;
:class:`JobProgressAdapter` turns lines of JSON (``{"total": 10, "current": 3,
"message": "..."}``) into progress reports of the Girder job. The original
girder-worker's names, at its import path.
"""

from __future__ import annotations

import json
import struct
from typing import Any

__all__ = ["DockerStreamPushAdapter", "JobProgressAdapter", "StreamPushAdapter", "demux_frames"]

_HEADER = struct.Struct(">BxxxL")


class StreamPushAdapter:
    """Something bytes are pushed to: ``write(buf)``, then ``close()``."""

    def write(self, buf: bytes) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Called after the last write."""


class JobProgressAdapter(StreamPushAdapter):
    """Reports each line of JSON written to it as progress of ``job_manager``'s job.

    Lines that are not a JSON object are ignored.
    """

    def __init__(self, job_manager: Any) -> None:
        super().__init__()
        self.job_manager = job_manager
        self._buf = b""

    def write(self, buf: bytes) -> None:
        *lines, self._buf = (self._buf + buf).split(b"\n")
        for line in lines:
            self._parse(line)

    def _parse(self, line: bytes) -> None:
        try:
            doc = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
            return
        if isinstance(doc, dict) and self.job_manager is not None:
            self.job_manager.updateProgress(
                total=doc.get("total"), current=doc.get("current"), message=doc.get("message")
            )

    def close(self) -> None:
        if self._buf:
            self._parse(self._buf)
            self._buf = b""


class _FrameReader:
    """Splits Docker's multiplexed stream into ``(stream type, payload)`` pieces, across writes."""

    def __init__(self) -> None:
        self._header = b""
        self._left = 0
        self._kind = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        view = memoryview(data)
        while view:
            if self._left == 0:
                need = _HEADER.size - len(self._header)
                self._header += bytes(view[:need])
                view = view[need:]
                if len(self._header) < _HEADER.size:
                    break
                self._kind, self._left = _HEADER.unpack(self._header)
                self._header = b""
                continue
            piece = bytes(view[: self._left])
            view = view[len(piece) :]
            self._left -= len(piece)
            out.append((self._kind, piece))
        return out


def demux_frames() -> _FrameReader:
    """A new reader of Docker's multiplexed attach stream; ``feed(data)`` returns its pieces."""
    return _FrameReader()


class DockerStreamPushAdapter(StreamPushAdapter):
    """Passes the payload of each frame of a multiplexed Docker stream to ``adapter``."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self._frames = _FrameReader()

    def write(self, data: bytes) -> None:
        for _kind, payload in self._frames.feed(data):
            self._adapter.write(payload)

    def close(self) -> None:
        self._adapter.close()

"""Where a container's stdout and stderr go by default: the job log and the worker log.

The job log gets the bytes as the container wrote them (as text); the worker log
gets each line, prefixed with the task's name and id, so the output of
concurrent runs stays apart. The last lines of both streams are kept for the
message of a run that fails.
"""

from __future__ import annotations

import codecs
import logging
from typing import Any

__all__ = ["ContainerOutput", "Tail"]

# Not the "girder_worker" logger's child that feeds the job log: the job log gets
# the container's own bytes, and these lines go to the worker log only.
_lines = logging.getLogger("girder_worker_docker.output")
_lines.propagate = False

TAIL_LINES = 20
_LONG_LINE = 1000


class Tail:
    """The last :data:`TAIL_LINES` lines of a container's output.

    It keeps the last bytes as they came and decodes them only when asked: a
    container that streams gigabytes costs a copy per chunk, not a decode.
    """

    #: Bytes kept: enough for TAIL_LINES lines of _LONG_LINE characters of 4-byte UTF-8.
    KEEP = TAIL_LINES * (_LONG_LINE + 1) * 4

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cut = False  # whether bytes before the kept ones were dropped

    def write(self, buf: bytes) -> None:
        self._buf += buf
        if len(self._buf) > 4 * self.KEEP:  # trimmed now and then, not at each write
            del self._buf[: -self.KEEP]
            self._cut = True

    def text(self) -> str:
        kept = bytes(self._buf[-self.KEEP :])
        lines = kept.decode("utf-8", errors="replace").split("\n")
        if self._cut or len(kept) < len(self._buf):
            # The first is the end of a longer line: dropped, unless it is all there is.
            lines = lines[1:] if len(lines) > 1 else [lines[0][-_LONG_LINE:]]
        if lines and lines[-1] == "":
            lines.pop()
        return "\n".join(line[:_LONG_LINE] for line in lines[-TAIL_LINES:])


class Teed:
    """Passes what is written to ``sink`` and to a :class:`Tail`."""

    def __init__(self, sink: Any, tail: Tail) -> None:
        self.sink = sink
        self.tail = tail

    def write(self, buf: bytes) -> None:
        self.tail.write(buf)
        self.sink.write(buf)

    def close(self) -> None:
        self.sink.close()


class ContainerOutput:
    """The default sink of one stream (``"stdout"`` or ``"stderr"``) of a run's container."""

    def __init__(self, task: Any, stream: str) -> None:
        self._job = getattr(task, "job_manager", None)
        request = getattr(task, "request", None)
        self._prefix = f"{getattr(task, 'name', 'docker_run')}[{getattr(request, 'id', None)}] {stream}"
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def write(self, buf: bytes) -> None:
        text = self._decoder.decode(buf)
        if not text:
            return
        if self._job is not None:
            self._job.write(text)
        *done, self._partial = (self._partial + text).split("\n")
        for line in done:
            self._log(line)

    def _log(self, line: str) -> None:
        if _lines.isEnabledFor(logging.INFO):
            record = _lines.makeRecord(_lines.name, logging.INFO, __file__, 0, "%s: %s", (self._prefix, line), None)
            logging.getLogger().handle(record)  # the root's handlers: the worker log

    def close(self) -> None:
        final = self._decoder.decode(b"", final=True)
        if final and self._job is not None:
            self._job.write(final)
        rest, self._partial = self._partial + final, ""
        if rest:
            self._log(rest)

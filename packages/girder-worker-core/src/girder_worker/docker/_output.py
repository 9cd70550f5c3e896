"""Where a container's stdout and stderr go by default: the job log and the worker log.

The job log gets the bytes as the container wrote them (as text); the worker log
gets each line, prefixed with the task's name and id, so the output of
concurrent runs stays apart. The last lines of both streams are kept for the
message of a run that fails.
"""

from __future__ import annotations

import codecs
import collections
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
    """The last :data:`TAIL_LINES` lines of a container's output."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, buf: bytes) -> None:
        text = self._partial + self._decoder.decode(buf)
        *done, self._partial = text.split("\n")
        self.lines.extend(line[:_LONG_LINE] for line in done[-TAIL_LINES:])
        self._partial = self._partial[-_LONG_LINE:]

    def text(self) -> str:
        lines = [*self.lines, self._partial] if self._partial else list(self.lines)
        return "\n".join(lines[-TAIL_LINES:])


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

"""The select loop that moves bytes while a container runs.

One loop per run, in the task's thread: the container's multiplexed
stdout/stderr attach socket, the named pipes the container writes (read
connectors) and reads (write connectors), and a wake-up pipe that a cancel
writes to, so a cancel is seen at once rather than at the next poll. The loop
ends when the container's output ends (it exited) or the run is cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from collections.abc import Callable
from typing import Any

from .stream_adapter import demux_frames

__all__ = ["Pump"]

logger = logging.getLogger("girder_worker.docker")

CHUNK = 1 << 16
#: Bytes read from the attach stream at once: what the engine has, up to this.
ATTACH_CHUNK = 1 << 18
#: How often to try again to open a write end that no reader has open yet.
_OPEN_RETRY = 0.02


class Pump:
    """Moves bytes between a container and the worker until the container's output ends."""

    def __init__(
        self,
        attach: Any,
        sinks: dict[int, Any],
        readers: list[Any],
        writers: list[Any],
        wake_fd: int,
    ) -> None:
        self.attach = attach
        self.sinks = sinks
        self.readers = list(readers)
        self.writers = list(writers)
        self.wake_fd = wake_fd
        self._frames = demux_frames()
        # Read into one buffer: the frames' payloads are copied out of it once, and no
        # buffer is allocated per read (SocketIO.read(n) makes and zeroes n bytes).
        self._buffer = bytearray(ATTACH_CHUNK)
        self._view = memoryview(self._buffer)
        self._readinto = getattr(attach, "readinto", None)

    def run(self, cancelled: Callable[[], bool]) -> bool:
        """Pump until the container's output ends (False) or ``cancelled()`` (True)."""
        attach_fd = self.attach.fileno()
        while True:
            for connector in [w for w in self.writers if w.fileno() is None]:
                connector.open()
            readable_fds = [attach_fd, self.wake_fd, *(r for r in self.readers if r.fileno() is not None)]
            writable = [w for w in self.writers if w.fileno() is not None]
            waiting = len(writable) < len(self.writers)
            ready_r, ready_w, _ = select.select(readable_fds, writable, (), _OPEN_RETRY if waiting else 1.0)
            if cancelled():
                return True
            if attach_fd in ready_r and not self._attach_data():
                return False
            for connector in ready_r:
                if connector in (attach_fd, self.wake_fd):
                    continue
                if hasattr(connector.input, "reopen"):
                    self._pipe_data(connector)
                else:
                    self._move(connector, self.readers, connector.read)
            for connector in ready_w:
                self._move(connector, self.writers, connector.write)

    def _attach_data(self) -> bool:
        if self._readinto is not None:
            count = self._readinto(self._view)
            data: Any = self._view[: count or 0]
        else:
            data = self.attach.read(CHUNK)
        if not data:
            return False
        for kind, payload in self._frames.feed(data):
            sink = self.sinks.get(kind)
            if sink is not None:
                sink.write(payload)
        return True

    def _pipe_data(self, connector: Any) -> None:
        # A named pipe may be opened and closed many times by the container; it ends
        # only when the container does.
        data = connector.input.read(CHUNK)
        if data:
            connector.output.write(data)
        else:
            connector.input.reopen()

    def _move(self, connector: Any, group: list[Any], step: Callable[[int], int]) -> None:
        try:
            moved = step(CHUNK)
        except BrokenPipeError:
            logger.info("the container closed a named pipe before reading all of it")
            moved = 0
            with contextlib.suppress(OSError):
                connector.close()
        if moved == 0 and connector in group:
            group.remove(connector)

    def finish(self) -> None:
        """After the container exited: read what its pipes still hold, then close everything."""
        for connector in self.readers:
            with contextlib.suppress(OSError):
                while connector.fileno() is not None:
                    data = connector.input.read(CHUNK)
                    if not data:
                        break
                    connector.output.write(data)
        for connector in [*self.readers, *self.writers]:
            with contextlib.suppress(OSError):
                connector.close()
        self.readers, self.writers = [], []
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                sink.close()


def wake_pipe() -> tuple[int, Callable[[], None], Callable[[], None]]:
    """``(read_fd, wake, close)``: ``wake()`` makes ``read_fd`` readable, safely from any thread."""
    import threading

    read_fd, write_fd = os.pipe()
    lock = threading.Lock()
    state = {"open": True}

    def wake() -> None:
        with lock:
            if state["open"]:
                os.write(write_fd, b"x")

    def close() -> None:
        with lock:
            if state["open"]:
                state["open"] = False
                os.close(read_fd)
                os.close(write_fd)

    return read_fd, wake, close

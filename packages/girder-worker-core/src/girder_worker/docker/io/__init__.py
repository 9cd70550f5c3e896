"""Streams between the worker and a running container: readers, writers, connectors.

A *connector* joins a reader to a writer and stands in the worker's select loop
for the side that waits on a file descriptor: :class:`FDReadStreamConnector`
waits until its input can be read (a named pipe the container writes, the
container's stdout) and passes the bytes to its output; :class:`FDWriteStreamConnector`
waits until its output can take bytes (a named pipe the container reads) and
feeds it from its input. Writers and readers are small classes with ``read(n)`` /
``write(buf)`` and ``close()``, so a plugin can add its own::

    from girder_worker.docker.io import StreamWriter

    class Upper(StreamWriter):
        def __init__(self, out):
            self.out = out

        def write(self, buf):
            self.out.write(buf.upper())

These are the original girder-worker's names, at its import path.
"""

from __future__ import annotations

import abc
import errno
import os
import stat
import sys
import urllib.parse
from http import client as httplib
from typing import IO, Any

__all__ = [
    "ChunkedTransferEncodingStreamWriter",
    "FDReadStreamConnector",
    "FDStreamConnector",
    "FDWriteStreamConnector",
    "FileDescriptorReader",
    "FileDescriptorWriter",
    "NamedPipe",
    "NamedPipeReader",
    "NamedPipeWriter",
    "StdStreamWriter",
    "StreamReader",
    "StreamWriter",
]


class StreamReader(metaclass=abc.ABCMeta):
    """Something the worker reads bytes from; ``read`` returns ``b""`` at the end."""

    @abc.abstractmethod
    def read(self, buf_len: int) -> bytes:
        """Up to ``buf_len`` bytes; ``b""`` when the stream has ended."""

    def close(self) -> None:  # noqa: B027  (optional)
        """Called once after the last read."""


class StreamWriter(metaclass=abc.ABCMeta):
    """Something the worker writes bytes to."""

    @abc.abstractmethod
    def write(self, buf: bytes) -> Any:
        """Take a chunk of bytes."""

    def close(self) -> None:  # noqa: B027  (optional)
        """Called once after the last write."""


class FileDescriptorReader(StreamReader):
    """Reads an open file descriptor."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def fileno(self) -> int | None:
        return self._fd

    def read(self, n: int) -> bytes:
        fd = self.fileno()
        assert fd is not None, "read from a reader that is not open"
        return os.read(fd, n)

    def close(self) -> None:
        fd = self.fileno()
        if fd is not None:
            os.close(fd)
            self._fd = None


class FileDescriptorWriter(StreamWriter):
    """Writes to an open file descriptor; returns how many bytes it took."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def fileno(self) -> int | None:
        return self._fd

    def write(self, buf: bytes) -> int:
        fd = self.fileno()
        assert fd is not None, "write to a writer that is not open"
        return os.write(fd, buf)

    def close(self) -> None:
        fd = self.fileno()
        if fd is not None:
            os.close(fd)
            self._fd = None


class StdStreamWriter(StreamWriter):
    """Writes to ``sys.stdout`` or ``sys.stderr`` (as text), which it never closes."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, buf: bytes | str) -> Any:
        text = buf.decode("utf-8", errors="replace") if isinstance(buf, bytes) else buf
        return self._stream.write(text)

    def close(self) -> None:
        self._stream.flush()


class NamedPipe:
    """A FIFO at ``path``, made when this object is; opened without blocking."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        os.mkfifo(self.path)

    def open(self, flags: int) -> None:
        """Open the FIFO with ``flags``; a write end stays closed until a reader has it open."""
        if self._fd is not None:
            return
        if not stat.S_ISFIFO(os.stat(self.path).st_mode):
            raise OSError(f"{self.path} is not a named pipe")
        try:
            self._fd = os.open(self.path, flags)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # nobody reads it yet: try again later
                raise

    def fileno(self) -> int | None:
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class NamedPipeReader(FileDescriptorReader):
    """The worker's read end of a named pipe that the container writes."""

    def __init__(self, pipe: NamedPipe, container_path: str | None = None) -> None:
        super().__init__(None)
        self._pipe = pipe
        self._container_path = container_path

    def open(self) -> None:
        self._pipe.open(os.O_RDONLY | os.O_NONBLOCK)

    def path(self) -> str | None:
        """The pipe's path inside the container (what the container is told to write)."""
        return self._container_path

    def fileno(self) -> int | None:
        return self._pipe.fileno()

    def read(self, n: int) -> bytes:
        try:
            return super().read(n)
        except BlockingIOError:  # woken with nothing to read (a writer came and went)
            return b""

    def reopen(self) -> None:
        """Wait for the next writer: the last one closed it, and more may come (``echo >> pipe``)."""
        self._pipe.close()
        self.open()

    def close(self) -> None:
        self._pipe.close()


class NamedPipeWriter(FileDescriptorWriter):
    """The worker's write end of a named pipe that the container reads."""

    def __init__(self, pipe: NamedPipe, container_path: str | None = None) -> None:
        super().__init__(None)
        self._pipe = pipe
        self._container_path = container_path

    def open(self) -> None:
        self._pipe.open(os.O_WRONLY | os.O_NONBLOCK)

    def path(self) -> str | None:
        """The pipe's path inside the container (what the container is told to read)."""
        return self._container_path

    def fileno(self) -> int | None:
        return self._pipe.fileno()

    def write(self, buf: bytes) -> int:
        try:
            return super().write(buf)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        self._pipe.close()


class FDStreamConnector(metaclass=abc.ABCMeta):
    """Joins ``input`` (read from) to ``output`` (written to) in the worker's select loop."""

    def __init__(self, input: Any, output: Any) -> None:
        self.input = input
        self.output = output

    @abc.abstractmethod
    def open(self) -> None:
        """Open the side the select loop waits on."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close both sides."""

    @abc.abstractmethod
    def fileno(self) -> int | None:
        """The descriptor the select loop waits on; None while it is not open."""


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        close()


class FDReadStreamConnector(FDStreamConnector):
    """Waits until ``input`` can be read and passes what it reads to ``output``."""

    def fileno(self) -> int | None:
        fileno = getattr(self.input, "fileno", None)
        return fileno() if callable(fileno) else None

    def read(self, n: int = 65536) -> int:
        """Move up to ``n`` bytes; 0 (and the connector closed) at the end of the input."""
        buf = self.input.read(n)
        if not buf:
            self.close()
            return 0
        self.output.write(buf)
        return len(buf)

    def open(self) -> None:
        opener = getattr(self.input, "open", None)
        if callable(opener):
            opener()

    def close(self) -> None:
        try:
            _close(self.input)
        finally:
            _close(self.output)


class FDWriteStreamConnector(FDStreamConnector):
    """Waits until ``output`` can take bytes and feeds it from ``input``.

    A pipe may take fewer bytes than offered; the rest is kept and offered first
    the next time, so nothing is lost.
    """

    def __init__(self, input: Any, output: Any) -> None:
        super().__init__(input, output)
        self._pending = b""
        self._ended = False

    def fileno(self) -> int | None:
        fileno = getattr(self.output, "fileno", None)
        return fileno() if callable(fileno) else None

    def write(self, n: int = 65536) -> int:
        """Move up to ``n`` bytes; 0, and the connector closed, once the input is used up."""
        if not self._pending:
            self._pending = self.input.read(n)
            if not self._pending:
                self.close()
                return 0
        taken = self.output.write(self._pending)
        taken = len(self._pending) if taken is None else int(taken)
        self._pending = self._pending[taken:]
        return max(taken, 1)  # the pipe was full: not the end, try again when writable

    def open(self) -> None:
        opener = getattr(self.output, "open", None)
        if callable(opener):
            opener()

    def close(self) -> None:
        try:
            _close(self.output)
        finally:
            _close(self.input)


class ChunkedTransferEncodingStreamWriter(StreamWriter):
    """POSTs what is written to ``url`` as an HTTP request body in chunks."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self._url = url
        self._closed = False
        parts = urllib.parse.urlparse(url)
        conn: httplib.HTTPConnection
        if parts.scheme == "https":
            conn = httplib.HTTPSConnection(parts.netloc)
        else:
            conn = httplib.HTTPConnection(parts.netloc)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        try:
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for header, value in (headers or {}).items():
                conn.putheader(header, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
        except Exception:
            sys.stderr.write(f"HTTP connection to {url!r} failed.\n")
            conn.close()
            raise
        self.conn = conn

    def write(self, buf: bytes) -> None:
        try:
            self.conn.send(f"{len(buf):x}\r\n".encode() + buf + b"\r\n")
        except Exception:
            self.conn.close()
            self._closed = True
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.conn.send(b"0\r\n\r\n")
            resp = self.conn.getresponse()
            if resp.status >= 300:
                raise OSError(
                    f"HTTP stream output to {self._url} failed with status {resp.status}: {resp.read()[:500]!r}"
                )
        finally:
            self.conn.close()

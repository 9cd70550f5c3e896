"""A job's log on its way to Girder: batched, bounded, progress bars collapsed.

Girder appends each ``log`` it is sent as one entry of the job's log list, and on
every append keeps only the last ``4 MiB // len(entry)`` entries. A log sent as many
small entries and then one large one therefore loses its beginning. The buffer
keeps the number of entries and their size such that Girder never cuts: entries get
smaller as their number grows, and after :data:`COMPACT_AFTER` entries the next
update replaces the whole log with one entry (``overwrite``).

A task may write far more than a job log should hold. The buffer keeps the first
half of ``limit`` characters (sent as they come) and the last half (held back and
sent when the job ends, replacing the log with head, a note saying how much was
left out, and tail), so its memory stays under ``limit`` whatever the task writes.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["Entry", "LogBuffer"]

GIRDER_SLICE_CHARS = 4 * 1024 * 1024
MAX_ENTRY_CHARS = 256 * 1024
COMPACT_AFTER = 256
MAX_LINE_CHARS = 64 * 1024


@dataclass(frozen=True)
class Entry:
    """One ``log`` value to send: ``text``, replacing the log if ``overwrite``."""

    text: str
    overwrite: bool
    head: str  # what of ``text`` is the task's output (not a note of ours)


def _collapse_done(text: str) -> str:
    """Finished lines as a terminal shows them: each carriage return redraws its line."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "\r" in line:
            if line.endswith("\r") and i < len(lines) - 1:
                line = line[:-1]  # \r\n
            lines[i] = line[line.rfind("\r") + 1 :]
    return "\n".join(lines)


def _collapse_open(line: str) -> str:
    """An unfinished line, keeping a trailing carriage return (it may start a \\r\\n)."""
    trailing = line.endswith("\r")
    body = line[:-1] if trailing else line
    return body[body.rfind("\r") + 1 :] + ("\r" if trailing else "")


class LogBuffer:
    """The output of one run, waiting to go to its Girder job.

    The task's threads call :meth:`write`; the sender calls :meth:`stage` for the
    next entry to send and :meth:`commit` once Girder has it. A failed send is
    retried with the same staged entry, so nothing is sent twice or lost.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tail_limit = limit // 2
        self._head_limit = limit - self._tail_limit
        self._lock = threading.Lock()
        self._line = ""
        self._line_redrawn = False  # the open line has had a carriage return
        self._pending: list[str] = []
        self._head_used = 0
        self._tail: deque[str] = deque()
        self._tail_chars = 0
        self._dropped = 0
        self._dropped_reported = 0
        self._notice_due = False
        self._sent: list[str] = []
        self._entries = 0
        self._staged: Entry | None = None
        self._dirty = False  # something could be sent; writes wake the sender only when it was not
        self.total_written = 0

    # -- the task's side -----------------------------------------------------

    def write(self, text: str) -> bool:
        """Add output; return True if it is the first of it that could be sent now."""
        if not text:
            return False
        with self._lock:
            self.total_written += len(text)
            if "\r" in text or self._line_redrawn:
                self._write_redrawn(text)
            else:
                newline = text.rfind("\n")
                if newline < 0:
                    self._line += text
                    if len(self._line) > MAX_LINE_CHARS:
                        self._accept(self._line)
                        self._line = ""
                else:
                    done = self._line + text[: newline + 1]
                    self._line = text[newline + 1 :]
                    self._accept(done)
            if self._dirty:
                return False
            self._dirty = self._sendable()
            return self._dirty

    def _write_redrawn(self, text: str) -> None:
        newline = text.rfind("\n")
        if newline < 0:
            line = _collapse_open(self._line + text)
            self._line_redrawn = True
            if len(line) > MAX_LINE_CHARS:
                self._accept(line.rstrip("\r"))
                line = ""
                self._line_redrawn = False
            self._line = line
        else:
            done = self._line + text[: newline + 1]
            rest = text[newline + 1 :]
            self._line_redrawn = "\r" in rest
            self._line = _collapse_open(rest) if self._line_redrawn else rest
            self._accept(_collapse_done(done) if "\r" in done else done)

    def _accept(self, text: str) -> None:
        room = self._head_limit - self._head_used
        if room > 0:
            part = text[:room]
            self._pending.append(part)
            self._head_used += len(part)
            text = text[room:]
            if not text:
                return
        if not self._tail and not self._dropped:
            self._notice_due = True
        if len(text) > self._tail_limit:
            self._dropped += len(text) - self._tail_limit
            text = text[-self._tail_limit :]
        self._tail.append(text)
        self._tail_chars += len(text)
        while self._tail_chars - len(self._tail[0]) >= self._tail_limit:
            first = self._tail.popleft()
            self._tail_chars -= len(first)
            self._dropped += len(first)

    # -- the sender's side -----------------------------------------------------

    def has_output(self) -> bool:
        """Whether anything is waiting, held-back output included."""
        with self._lock:
            return bool(self._sendable() or self._line or self._tail or self._dropped > self._dropped_reported)

    def footprint(self) -> int:
        """About how many characters the buffer holds in memory."""
        with self._lock:
            pending = sum(map(len, self._pending)) + len(self._staged.text if self._staged else "")
            return pending + self._tail_chars + len(self._line) + sum(map(len, self._sent))

    @property
    def dropped(self) -> int:
        """Characters of output left out of the job log so far."""
        return self._dropped

    def sendable(self) -> bool:
        """Whether something could be sent before the end of the run."""
        with self._lock:
            return self._sendable()

    def _sendable(self) -> bool:
        return bool(self._staged or self._pending or self._notice_due or (self._line and not self._line_redrawn))

    def stage(self, final: bool) -> Entry | None:
        """The next entry to send, or None; the same one until :meth:`commit`.

        Before the end (``final`` false) a last line still being redrawn by carriage
        returns is held back. At the end everything goes, the held-back tail too.
        """
        with self._lock:
            if self._staged is None:
                self._staged = self._make_entry(final)
            self._dirty = self._sendable()
            return self._staged

    def commit(self) -> None:
        """Girder has the staged entry."""
        with self._lock:
            entry, self._staged = self._staged, None
            if entry is None:
                return
            if entry.overwrite:
                self._sent = [entry.head]
                self._entries = 1
            else:
                self._sent.append(entry.head)
                self._entries += 1
            self._dirty = self._sendable()

    def _make_entry(self, final: bool) -> Entry | None:
        if self._line and (final or not self._line_redrawn):
            line, self._line = self._line.rstrip("\r") if final else self._line, ""
            self._line_redrawn = False
            if line:
                self._accept(line)
        pending = "".join(self._pending)
        self._pending = []
        if final and (self._tail or self._dropped > self._dropped_reported):
            return self._truncated_log(pending)
        notice = ""
        if self._notice_due:
            self._notice_due = False
            notice = (
                f"\n[girder-worker: the output passed {self._head_limit:,} characters; the rest is held "
                f"back, and the last {self._tail_limit:,} characters of it are added when the job ends]\n"
            )
        if not pending and not notice:
            return None
        if self._entries >= COMPACT_AFTER:
            head = "".join(self._sent) + pending
            return Entry(head + notice, True, head)
        room = max(1, min(MAX_ENTRY_CHARS, GIRDER_SLICE_CHARS // (self._entries + 1) - len(notice)))
        if len(pending) > room:
            self._pending = [pending[room:]]
            pending = pending[:room]
        return Entry(pending + notice, False, pending)

    def _truncated_log(self, pending: str) -> Entry:
        tail = "".join(self._tail)
        excess = len(tail) - self._tail_limit
        if excess > 0:
            tail = tail[excess:]
            self._dropped += excess
        cut = tail.find("\n")
        if 0 <= cut < len(tail) - 1:  # start the tail at a line, unless it is one line
            tail = tail[cut + 1 :]
            self._dropped += cut + 1
        self._tail.clear()
        self._tail_chars = 0
        self._dropped_reported = self._dropped
        self._notice_due = False  # the note below says it all
        head = "".join(self._sent) + pending
        note = (
            f"{'' if head.endswith(chr(10)) or not head else chr(10)}[girder-worker: {self._dropped:,} "
            f"characters of output left out here; a job log keeps at most {self.limit:,}]\n"
        )
        return Entry(head + note + tail, True, head)

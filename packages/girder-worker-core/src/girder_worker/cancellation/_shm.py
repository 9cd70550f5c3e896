"""Cancellation across the prefork pool: a table in memory the pool shares.

Celery's revoked set lives in the worker's main process, while a prefork task runs
in a child process. Before the pool forks, the main process maps one anonymous
shared page table: a slot per pool process, where the child writes the id of the
task it runs, and a ring of recently cancelled ids. On a cancel the main process
adds the id to the ring, then sets the cancel byte of any slot running it; a child
starting a task writes its slot, then looks for its id in the ring. Whichever
comes second sees the other, and the task's ``cancelled`` reads one byte.

The byte also says who stopped the run: a cancel (1) or a soft (2) or hard (3)
time limit, whose reason the main process writes into the slot first.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from typing import Any

__all__ = ["SharedTable", "SlotFlag"]

SLOT = 128  # flag byte, pad, pid (8 bytes at 8), task id (at 16, 48 bytes), reason (at 64, 64 bytes)
RING = 256
ID_BYTES = 48
REASON_AT = 64
REASON_BYTES = 64
_PID = struct.Struct("<q")

CANCELLED = 1
#: Flag byte of a run stopped by its time limit, by kind.
TIME_LIMIT_CODES = {"soft": 2, "hard": 3}
_TIME_LIMITS = {code: kind for kind, code in TIME_LIMIT_CODES.items()}


def _encode(task_id: str) -> bytes:
    raw = task_id.encode()[:ID_BYTES]
    return raw + b"\0" * (ID_BYTES - len(raw))


class SharedTable:
    """The shared table: ``slots`` pool slots and a ring of cancelled ids."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._ring_at = slots * SLOT
        self.mem = mmap.mmap(-1, self._ring_at + 8 + RING * ID_BYTES)
        self.owner_pid = os.getpid()

    # main process -------------------------------------------------------
    def cancel(self, task_id: str, reason: str = "cancelled") -> int | None:
        """Record ``task_id`` as cancelled (``reason`` for its run); return the pid running it, if any."""
        raw = _encode(task_id)
        (count,) = _PID.unpack_from(self.mem, self._ring_at)
        at = self._ring_at + 8 + (count % RING) * ID_BYTES
        self.mem[at : at + ID_BYTES] = raw
        _PID.pack_into(self.mem, self._ring_at, count + 1)
        found = None
        for slot in range(self.slots):
            base = slot * SLOT
            if self.mem[base + 16 : base + 16 + ID_BYTES] == raw:
                if not self.mem[base]:
                    _write_reason(self.mem, base, reason)
                    self.mem[base] = CANCELLED
                (found,) = _PID.unpack_from(self.mem, base + 8)
        return found

    def expire(self, task_id: str, time_limit: str, reason: str) -> int | None:
        """Tell the run of ``task_id`` that its ``time_limit`` passed; return its pid.

        Unlike :meth:`cancel` it leaves no trace for a later run of the same id: a
        retried task starts with its time again. A run already stopping for a cancel
        keeps that reason, unless this is its hard limit. None if no pool process
        runs it.
        """
        raw = _encode(task_id)
        for slot in range(self.slots):
            base = slot * SLOT
            if self.mem[base + 16 : base + 16 + ID_BYTES] == raw:
                if not self.mem[base] or time_limit == "hard":
                    _write_reason(self.mem, base, reason)
                    self.mem[base] = TIME_LIMIT_CODES[time_limit]
                return int(_PID.unpack_from(self.mem, base + 8)[0])
        return None

    def pid_running(self, task_id: str) -> int | None:
        raw = _encode(task_id)
        for slot in range(self.slots):
            base = slot * SLOT
            if self.mem[base + 16 : base + 16 + ID_BYTES] == raw:
                return int(_PID.unpack_from(self.mem, base + 8)[0])
        return None

    # pool child ---------------------------------------------------------
    def begin(self, slot: int, task_id: str) -> SlotFlag:
        base = slot * SLOT
        raw = _encode(task_id)
        self.mem[base] = 0
        _write_reason(self.mem, base, "")
        _PID.pack_into(self.mem, base + 8, os.getpid())
        self.mem[base + 16 : base + 16 + ID_BYTES] = raw
        if self._in_ring(task_id, raw):
            self.mem[base] = CANCELLED
        return SlotFlag(self.mem, base)

    def _in_ring(self, task_id: str, raw: bytes) -> bool:
        """Whether the ring of cancelled ids holds ``raw`` (``task_id``, encoded) as an entry.

        It looks for the id's own bytes, not its padded entry: the trailing NULs of a
        padded id matched everywhere in an empty or sparse ring, and the search took
        30 us per run begun (10 us in a full ring); this one 1-5 us. A hit counts
        only where an entry starts and the whole entry is equal.
        """
        needle = task_id.encode()[:ID_BYTES]
        if not needle:
            return False
        start = self._ring_at + 8
        end = start + RING * ID_BYTES
        at = self.mem.find(needle, start, end)
        while at != -1:
            if not (at - start) % ID_BYTES and self.mem[at : at + ID_BYTES] == raw:
                return True
            at = self.mem.find(needle, at + 1, end)
        return False

    def end(self, slot: int) -> None:
        base = slot * SLOT
        self.mem[base + 16 : base + 16 + ID_BYTES] = b"\0" * ID_BYTES
        self.mem[base] = 0


class SlotFlag:
    """The cancel flag of a task running in a pool child: one shared byte."""

    __slots__ = ("_base", "_latched", "_lock", "_mem", "_watcher", "callbacks", "thread_id")

    def __init__(self, mem: mmap.mmap, base: int) -> None:
        self._mem = mem
        self._base = base
        self._latched = False
        self.callbacks: list[Any] = []
        self._watcher: Any = None
        self._lock = threading.Lock()
        self.thread_id = threading.get_ident()

    def is_set(self) -> bool:
        if self._latched:
            return True
        if self._mem[self._base]:
            self._latched = True
            return True
        return False

    @property
    def time_limit(self) -> str | None:
        """``"soft"`` or ``"hard"`` when a time limit stopped the run."""
        return _TIME_LIMITS.get(self._mem[self._base])

    @property
    def reason(self) -> str:
        at = self._base + REASON_AT
        return self._mem[at : at + REASON_BYTES].rstrip(b"\0").decode(errors="replace") or "cancelled"

    def set(self, reason: str = "cancelled") -> None:
        if not self._mem[self._base]:
            _write_reason(self._mem, self._base, reason)
            self._mem[self._base] = CANCELLED

    def add_callback(self, callback: Any) -> None:
        from ._watch import watch

        self.callbacks.append(callback)
        if self._watcher is None:
            self._watcher = watch(self)

    def take_callbacks(self) -> list[Any]:
        with self._lock:
            callbacks, self.callbacks = self.callbacks, []
        return callbacks

    def close(self) -> None:
        """End of the run: stop the watcher, and run callbacks it had no time to run."""
        if self._watcher is not None:
            self._watcher.set()
        self.run_pending_callbacks()

    def run_pending_callbacks(self) -> None:
        if self.is_set():
            from girder_worker_utils.worker import run_cancel_callback

            for callback in self.take_callbacks():
                run_cancel_callback(callback)


def _write_reason(mem: mmap.mmap, base: int, reason: str) -> None:
    """Write a run's reason into its slot (cut at REASON_BYTES), before its flag byte."""
    text = reason.encode()[:REASON_BYTES]
    at = base + REASON_AT
    mem[at : at + REASON_BYTES] = text + b"\0" * (REASON_BYTES - len(text))

"""Leases: which worker runs which task, kept where every worker can see it.

A worker acknowledges a task's message when the task starts, so a broker never
holds a message for the hours a long job runs (RabbitMQ's ``consumer_timeout``
and Redis's ``visibility_timeout`` would end or duplicate it). What the broker no
longer knows is kept here instead: before a run starts, its worker *claims* the
task's lease (the task's message, its delivery count, the worker that holds it),
and while the worker lives it keeps a heartbeat key fresh. A lease whose holder's
heartbeat has lapsed belongs to a lost worker; another worker *takes* it and
applies the task's delivery policy. A lease is *released* when its run ends.

Two stores, as for cancellations: Redis (the result backend's server) and files
next to the embedded backend's results.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..broker._private_files import ensure_private_dir, open_private, write_private
from ..broker._redis_lua import STORE_UNLESS_SUCCEEDED_FUNCTION
from ..cancellation._store import durable_backend

__all__ = ["Claim", "Lease", "LeaseStore", "lease_store_for"]

#: How long a finished task's lease is kept, to recognise a late duplicate of it.
DONE_RETENTION_SECONDS = 24 * 3600

RUNNING, DONE, LOST, QUEUED = "running", "done", "lost", "queued"


@dataclass(frozen=True)
class Claim:
    """What claiming a lease found: the delivery count, or why this is a duplicate."""

    deliveries: int
    #: ``"running"`` (another live worker runs it) or ``"done"``; None when claimed.
    duplicate_of: str | None = None
    holder: str = ""
    #: The lease's state before this claim: ``"running"`` means its earlier run was lost.
    previous: str = ""


@dataclass(frozen=True)
class Lease:
    """A lease taken over from a lost worker."""

    task_id: str
    deliveries: int
    holder: str
    message: dict[str, Any]


class LeaseStore(Protocol):
    def heartbeat(self, holder: str, ttl: float) -> None: ...
    def retire(self, holder: str) -> None: ...
    def claim(self, task_id: str, holder: str, message: dict[str, Any], attempt: int = 0) -> Claim: ...
    def release(self, runs: Iterable[tuple[str, int]], holder: str, state: str = DONE) -> None: ...
    def orphans(self) -> list[tuple[str, str]]: ...
    def take(self, task_id: str, holder: str, *, holder_alive: bool = False) -> Lease | None: ...


# -- Redis ---------------------------------------------------------------------

_PREFIX = "girder_worker:"
_RUNNING_KEY = _PREFIX + "running"
_ALIVE_PREFIX = _PREFIX + "alive:"

# KEYS: lease, running index. ARGV: holder, alive prefix, now, message, task id, attempt,
# the digest of the message's body (a finished task's id under another body is a new task).
# A message of a later attempt (Celery's retry publishes one under the same id) is
# never a duplicate: it starts the lease afresh. Returns the delivery count (0 for a
# duplicate), 'running' or 'done' for a duplicate, the previous holder, the previous state.
_CLAIM_FUNCTION = """
local function claim()
  local holder = redis.call('HGET', KEYS[1], 'holder')
  local state = redis.call('HGET', KEYS[1], 'state')
  local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '-1')
  if tonumber(ARGV[6]) > attempt then
    redis.call('DEL', KEYS[1])
    state = false
  else
    if state == 'done' then
      local digest = redis.call('HGET', KEYS[1], 'digest')
      if not digest or digest == ARGV[7] then return {0, 'done', holder or '', state} end
      redis.call('DEL', KEYS[1])  -- another message under a finished task's id: a new task
      state = 'reused'
    end
    if state == 'running' and holder and redis.call('EXISTS', ARGV[2] .. holder) == 1 then
      return {0, 'running', holder, state}
    end
  end
  local n = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
  redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'state', 'running', 'attempt', ARGV[6], 'digest', ARGV[7])
  redis.call('HSETNX', KEYS[1], 'message', ARGV[4])
  redis.call('PERSIST', KEYS[1])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
  return {n, '', holder or '', state or ''}
end
"""
_CLAIM = _CLAIM_FUNCTION + "return claim()\n"

# The claim, then, for a run that may start (no duplicate, within the delivery limit), its
# STARTED state stored as the result backend stores it: one round trip for both.
# KEYS: lease, running index, the task's result key. ARGV: the claim's, then the
# delivery limit, the encoded STARTED meta, its lifetime. Returns the claim's answer
# and what the store returned (see STORE_UNLESS_SUCCEEDED_FUNCTION; nil: not stored).
_CLAIM_AND_START = (
    _CLAIM_FUNCTION
    + STORE_UNLESS_SUCCEEDED_FUNCTION
    + """
local found = claim()
if found[2] == '' and found[1] <= tonumber(ARGV[8]) then
  found[5] = store_unless_succeeded(KEYS[3], ARGV[9], ARGV[10])
end
return found
"""
)

# KEYS: lease, running index. ARGV: holder, attempt, state, retention, task id.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
if ARGV[3] == 'done' then
  redis.call('HDEL', KEYS[1], 'message')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
redis.call('ZREM', KEYS[2], ARGV[5])
return 1
"""

# KEYS: lease. ARGV: expected holder, alive prefix, 1 if the holder may be alive.
_TAKE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return false end
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return false end
if ARGV[3] ~= '1' and redis.call('EXISTS', ARGV[2] .. ARGV[1]) == 1 then return false end
redis.call('HSET', KEYS[1], 'state', 'lost')
return {redis.call('HGET', KEYS[1], 'deliveries'), redis.call('HGET', KEYS[1], 'message')}
"""


#: ``Claim.previous`` of a message that reuses the id of a finished task with another body.
REUSED = "reused"


def digest_of(message: dict[str, Any]) -> str:
    """What tells two messages under one task id apart: a digest of the body.

    A broker's redelivery carries the same body; a client that reuses a finished
    task's id for another call does not.
    """
    return hashlib.sha256(str(message.get("body", "")).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLeaseStore:
    """Leases as Redis hashes, an index of running ones, a heartbeat key per worker."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._claim = client.register_script(_CLAIM)
        self._claim_and_start = client.register_script(_CLAIM_AND_START)
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _key(task_id: str) -> str:
        return f"{_PREFIX}lease:{task_id}"

    def heartbeat(self, holder: str, ttl: float) -> None:
        self.client.set(_ALIVE_PREFIX + holder, "1", px=max(1, int(ttl * 1000)))

    def retire(self, holder: str) -> None:
        self.client.delete(_ALIVE_PREFIX + holder)

    def claim(self, task_id: str, holder: str, message: dict[str, Any], attempt: int = 0) -> Claim:
        n, duplicate, previous_holder, previous = self._claim(
            keys=[self._key(task_id), _RUNNING_KEY],
            args=[holder, _ALIVE_PREFIX, time.time(), json.dumps(message), task_id, attempt, digest_of(message)],
        )
        return Claim(int(n), _text(duplicate) or None, _text(previous_holder), _text(previous))

    def claim_and_start(
        self,
        task_id: str,
        holder: str,
        message: dict[str, Any],
        attempt: int,
        limit: int,
        started: tuple[str, str, int],
    ) -> tuple[Claim, bool]:
        """:meth:`claim`, and for a run that may start (no duplicate, at most ``limit``
        deliveries) store ``started`` (its result key, encoded ``STARTED`` meta, lifetime),
        in one round trip. Returns the claim and whether ``STARTED`` was stored."""
        key, value, lifetime = started
        found = self._claim_and_start(
            keys=[self._key(task_id), _RUNNING_KEY, key],
            args=[
                holder,
                _ALIVE_PREFIX,
                time.time(),
                json.dumps(message),
                task_id,
                attempt,
                digest_of(message),
                limit,
                value,
                lifetime,
            ],
        )
        n, duplicate, previous_holder, previous = found[:4]
        stored = len(found) > 4 and int(found[4]) == 1
        return Claim(int(n), _text(duplicate) or None, _text(previous_holder), _text(previous)), stored

    def release(self, runs: Iterable[tuple[str, int]], holder: str, state: str = DONE) -> None:
        pipe = self.client.pipeline(transaction=False)
        for task_id, attempt in runs:
            self._release(
                keys=[self._key(task_id), _RUNNING_KEY],
                args=[holder, attempt, state, DONE_RETENTION_SECONDS, task_id],
                client=pipe,
            )
        if len(pipe):
            pipe.execute()

    def orphans(self) -> list[tuple[str, str]]:
        ids = [_text(i) for i in self.client.zrange(_RUNNING_KEY, 0, -1)]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(self._key(task_id), "holder", "state")
        rows = pipe.execute()
        stale = [i for i, (_, state) in zip(ids, rows, strict=True) if state is None or _text(state) != RUNNING]
        running = {i: _text(h) for i, (h, state) in zip(ids, rows, strict=True) if state is not None and h is not None}
        holders = sorted({h for i, h in running.items() if i not in stale})
        pipe = self.client.pipeline(transaction=False)
        for holder in holders:
            pipe.exists(_ALIVE_PREFIX + holder)
        alive = {h for h, up in zip(holders, pipe.execute(), strict=True) if up}
        if stale:
            self.client.zrem(_RUNNING_KEY, *stale)
        return [(i, h) for i, h in running.items() if i not in stale and h not in alive]

    def take(self, task_id: str, holder: str, *, holder_alive: bool = False) -> Lease | None:
        found = self._take(keys=[self._key(task_id)], args=[holder, _ALIVE_PREFIX, "1" if holder_alive else "0"])
        if not found:
            return None
        deliveries, message = found
        return Lease(task_id, int(deliveries), holder, json.loads(_text(message)) if message else {})


# -- files (the embedded backend) ----------------------------------------------


class FileLeaseStore:
    """Leases as JSON files under one folder, changed under a lock file.

    A running task's lease holds its message, Girder token included, for as long
    as another worker may have to run it again; the file is 0600 in a 0700 folder
    (see :mod:`girder_worker.broker._private_files`), and the message is dropped once the task is done.
    A lease file that is not a lease (garbage, another JSON value) counts as none.

    A finished task's lease moves to ``done/``, where it is kept for
    :data:`DONE_RETENTION_SECONDS` (a message of it delivered again is recognised as a
    duplicate), so that the search for leases of lost workers reads the leases of
    tasks in progress only: it ran every ``GIRDER_WORKER_LEASE_SECONDS / 2`` in every
    worker, and read every lease of the last day (160 ms per 10,000 tasks).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.alive = folder / "alive"
        self.done = folder / "done"
        self._folder, self._done = str(folder), str(self.done)
        #: The lock file, open in this process: (process id, descriptor).
        self._guard: tuple[int, int] | None = None
        # flock excludes open files, not threads: this process's threads share one.
        self._threads = threading.Lock()

    def _lock_file(self) -> int:
        """This process's descriptor of the lock file, opened once (again in a forked
        process, where the parent's would lock with the parent, and after the folder
        was removed, where other processes lock a new file)."""
        if self._guard is not None:
            pid, fd = self._guard
            if pid == os.getpid() and os.fstat(fd).st_nlink:
                return fd
            with contextlib.suppress(OSError):
                os.close(fd)  # in a forked process, its copy of the parent's: the parent's lock stays
        ensure_private_dir(self.alive)
        ensure_private_dir(self.done)
        fd = open_private(self.folder / ".lock", os.O_WRONLY | os.O_APPEND)
        self._guard = (os.getpid(), fd)
        return fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            fd = self._lock_file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _path(self, task_id: str, *, done: bool = False) -> str:
        """The lease file of ``task_id``: a running (or lost) task's, or with ``done`` a finished one's.

        A string: pathlib would intern every task's file name (see write_private).
        """
        if not task_id or "/" in task_id or task_id.startswith("."):
            raise ValueError(f"not a task id: {task_id!r}")
        return os.path.join(self._done if done else self._folder, f"{task_id}.json")

    def _read(self, task_id: str, *, done: bool = False) -> dict[str, Any] | None:
        try:
            with open(self._path(task_id, done=done), "rb") as file:
                data = json.loads(file.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _finished(self, task_id: str, lease: dict[str, Any]) -> dict[str, Any] | None:
        """The finished lease of ``lease``'s run, when its release stopped between writing
        it to ``done/`` and removing the running one (a worker killed there); else None."""
        finished = self._read(task_id, done=True)
        if finished is None or any(finished.get(k) != lease.get(k) for k in ("holder", "attempt", "deliveries")):
            return None
        with contextlib.suppress(OSError):
            os.unlink(self._path(task_id))
        return finished

    def _write(self, task_id: str, lease: dict[str, Any], *, new: bool = False) -> None:
        write_private(self._path(task_id), json.dumps(lease).encode(), new=new)

    def _is_alive(self, holder: str) -> bool:
        try:
            return (self.alive / holder.replace("/", "_")).stat().st_mtime > time.time()
        except FileNotFoundError:
            return False

    def heartbeat(self, holder: str, ttl: float) -> None:
        ensure_private_dir(self.alive)
        path = self.alive / holder.replace("/", "_")
        os.close(open_private(path, os.O_WRONLY))
        expires = time.time() + ttl  # the file's mtime is when the heartbeat runs out
        os.utime(path, (expires, expires))

    def retire(self, holder: str) -> None:
        (self.alive / holder.replace("/", "_")).unlink(missing_ok=True)

    def claim(self, task_id: str, holder: str, message: dict[str, Any], attempt: int = 0) -> Claim:
        with self._locked():
            found = self._read(task_id)
            lease = found
            if found is not None and found.get("state") == RUNNING and not self._is_alive(found.get("holder", "")):
                finished = self._finished(task_id, found)
                if finished is not None:
                    found, lease = None, finished
            if lease is None:
                lease = self._read(task_id, done=True) or {}
            if attempt > lease.get("attempt", -1):
                lease = {}
            state, previous_holder = lease.get("state", ""), lease.get("holder", "")
            digest = digest_of(message)
            if state == DONE:
                if lease.get("digest") in (None, digest):
                    return Claim(0, DONE, previous_holder, state)
                lease, state = {}, REUSED  # another message under a finished task's id: a new task
            if state == RUNNING and self._is_alive(previous_holder):
                return Claim(0, RUNNING, previous_holder, state)
            deliveries = lease.get("deliveries", 0) + 1
            lease.update(deliveries=deliveries, holder=holder, state=RUNNING, attempt=attempt, digest=digest)
            lease.setdefault("message", message)
            self._write(task_id, lease, new=found is None)  # a garbage file is renamed over all the same
            return Claim(deliveries, None, previous_holder, state)

    def release(self, runs: Iterable[tuple[str, int]], holder: str, state: str = DONE) -> None:
        with self._locked():
            for task_id, attempt in runs:
                lease = self._read(task_id)
                if lease is None or lease.get("holder") != holder or lease.get("attempt") != attempt:
                    continue
                lease["state"] = state
                if state != DONE:
                    self._write(task_id, lease)
                    continue
                lease.pop("message", None)
                # Written to done/ first: a release cut off here leaves both, and the
                # running one is recognised as finished (``_finished``).
                write_private(self._path(task_id, done=True), json.dumps(lease).encode(), new=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(task_id))

    def orphans(self) -> list[tuple[str, str]]:
        # Finished leases older than DONE_RETENTION_SECONDS are the sweep's (broker/_housekeeping.py).
        found = []
        for entry in os.scandir(self.folder) if self.folder.is_dir() else ():
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            task_id = entry.name[: -len(".json")]
            lease = self._read(task_id)
            if lease is None:
                continue
            if lease.get("state") == RUNNING and not self._is_alive(lease.get("holder", "")):
                found.append((task_id, lease.get("holder", "")))
        return found

    def take(self, task_id: str, holder: str, *, holder_alive: bool = False) -> Lease | None:
        with self._locked():
            lease = self._read(task_id)
            if lease is None or lease.get("state") != RUNNING or lease.get("holder") != holder:
                return None
            if not holder_alive and self._is_alive(holder):
                return None
            if self._finished(task_id, lease) is not None:
                return None
            lease["state"] = LOST
            self._write(task_id, lease)
            return Lease(task_id, int(lease["deliveries"]), holder, lease.get("message") or {})


def lease_store_for(app: Any) -> LeaseStore | None:
    """The lease store the app's result backend offers, or None (rpc://, ...)."""
    found = durable_backend(app)
    if found is None:
        return None
    kind, where = found
    return RedisLeaseStore(where) if kind == "redis" else FileLeaseStore(where / "leases")

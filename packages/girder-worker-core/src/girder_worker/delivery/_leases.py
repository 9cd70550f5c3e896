"""Leases: which worker runs which task, kept where every worker can see it.

A worker acknowledges a task's message when the task starts, so a broker never
holds a message for the hours a long job runs (RabbitMQ's ``consumer_timeout``
and Redis's ``visibility_timeout`` would end or duplicate it). What the broker no
longer knows is kept here instead: before a run starts, its worker *claims* the
task's lease (the task's message, its delivery count, the worker that holds it),
and while the worker lives it keeps a heartbeat key fresh. A lease whose holder's
heartbeat has lapsed belongs to a lost worker; another worker *takes* it and
applies the task's delivery policy. A lease is *released* when its run ends.

Two stores: Redis (the result backend's server), and a SQLite database next to
the embedded backend's results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..broker._private_files import ensure_private_dir, open_private
from ..broker._redis_lua import STORE_UNLESS_SUCCEEDED_FUNCTION
from ..cancellation._store import durable_backend

__all__ = [
    "Claim",
    "Lease",
    "LeaseStore",
    "RedisLeaseStore",
    "SqliteLeaseStore",
    "lease_store_for",
    "shared_sqlite_store",
]

logger = logging.getLogger("girder_worker.embedded")

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
    def claim_and_start(
        self,
        task_id: str,
        holder: str,
        message: dict[str, Any],
        attempt: int,
        limit: int,
        started: tuple[str, str, int],
    ) -> tuple[Claim, bool]: ...
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


# -- SQLite (the embedded backend) ---------------------------------------------

#: The lease database's file, in the data directory's ``leases/`` folder.
DATABASE_NAME = "leases.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    task_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    holder TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    deliveries INTEGER NOT NULL,
    digest TEXT,
    message TEXT,
    changed REAL NOT NULL,
    started TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lease_running ON lease(state) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS alive (holder TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID;
"""

_RELEASE_DONE = (
    "UPDATE lease SET state = ?, message = NULL, started = NULL, changed = ? "
    "WHERE task_id = ? AND holder = ? AND attempt = ?"
)
_RELEASE_KEEPING_MESSAGE = (
    "UPDATE lease SET state = ?, started = NULL, changed = ? WHERE task_id = ? AND holder = ? AND attempt = ?"
)

#: Connections a forked process inherited from its parent: never used, nor closed (closing
#: one would act on the parent's locks and journal), only kept from the garbage collector.
_inherited: list[Any] = []


class SqliteLeaseStore:
    """Leases in one SQLite database next to the embedded backend's results.

    A claim and a release are one transaction each, in every process that makes
    them (the worker's main process, its pool processes, other workers on the same
    data directory): SQLite's locks serialise them. Before, each lease was a JSON
    file changed under a lock file, and a task's claim and release wrote, renamed
    and removed four files: 98-120 us together in one process, 231-263 us with two
    at once, on ext4 here; the two transactions write no new file: 72-96 us, and
    86-90 us with two processes.

    A running task's lease holds its message, Girder token included, for as long
    as another worker may have to run it again, and a first delivery's ``STARTED``
    meta while it runs (:meth:`claim_and_start`); the database is 0600 in the 0700
    ``leases/`` folder (see :mod:`girder_worker.broker._private_files`), and both
    are dropped when the task is done. Nothing of them stays on disk then:
    the rollback journal is cut to nothing at each commit (``journal_mode=TRUNCATE``;
    a write-ahead log would keep old pages until it is checkpointed) and freed space is
    zeroed (``secure_delete``). Commits are not flushed to the disk
    (``synchronous=OFF``): a worker's crash loses nothing, as with the files it replaces,
    which were not flushed either; a power cut may. A database file that is not
    one (garbage, a cut-off copy) is moved into the ``quarantine`` folder with one
    log line, and a new one is started.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / DATABASE_NAME
        #: This process's connection: (process id, connection, the database file's stat when opened).
        self._conn: tuple[int, Any, os.stat_result] | None = None
        # One connection per process, used by its threads in turn.
        self._threads = threading.Lock()
        # No fork while a thread is inside a transaction. SQLite records the locks a process's
        # connections hold on a file in the process's memory; a child forked then (a pool
        # process started again) inherited the record, took the parent's lock for one of its
        # own, and every claim of its new connection waited 30 s for it and failed
        # ("database is locked").
        os.register_at_fork(
            before=self._threads.acquire,
            after_in_parent=self._threads.release,
            after_in_child=self._threads.release,
        )

    def _db(self) -> Any:
        """This process's connection, made on first use: again in a forked process, and
        after its file was removed (the data directory with it, which the embedded broker
        makes again), where other processes use a new database."""
        if self._conn is not None:
            pid, conn, opened = self._conn
            if pid != os.getpid():
                _inherited.append(conn)
            elif _same_file(self.path, opened):
                return conn
            else:
                conn.close()
        import sqlite3

        try:
            conn = self._connect()
        except sqlite3.DatabaseError as exc:
            self._set_aside(exc)
            conn = self._connect()
        self._conn = (os.getpid(), conn, os.stat(self.path))
        return conn

    def _connect(self) -> Any:
        import sqlite3

        ensure_private_dir(self.folder)
        os.close(open_private(self.path, os.O_RDWR))  # 0600, and never through a symbolic link
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=TRUNCATE")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA secure_delete=ON")
            # Each process of a worker has a connection; SQLite's default page cache (2 MB each)
            # held the finished leases of the day in every one. Lookups are by key: 128 KiB do.
            conn.execute("PRAGMA cache_size=-128")
            conn.executescript(_SCHEMA)
            _add_started_column(conn)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _set_aside(self, exc: Exception) -> None:
        """Move a lease database SQLite cannot read into the quarantine folder."""
        quarantine = self.folder.parent / "quarantine"
        aside = quarantine / f"{int(time.time())}-{os.getpid()}-{DATABASE_NAME}"
        ensure_private_dir(quarantine)
        os.rename(self.path, aside)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self.path}-journal")  # a journal of another database
        logger.warning(
            "embedded broker: %s is not a lease database (%s); moved it to %s and started a new one; "
            "the tasks running now are not delivered again if their worker is lost",
            self.path,
            exc,
            aside,
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._threads:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _is_alive(db: Any, holder: str, now: float) -> bool:
        row = db.execute("SELECT expires FROM alive WHERE holder = ?", (holder,)).fetchone()
        return row is not None and row[0] > now

    def heartbeat(self, holder: str, ttl: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO alive (holder, expires) VALUES (?, ?)", (holder, time.time() + ttl))

    def retire(self, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM alive WHERE holder = ?", (holder,))

    def claim(self, task_id: str, holder: str, message: dict[str, Any], attempt: int = 0) -> Claim:
        with self._transaction() as db:
            return self._claim(db, task_id, holder, message, attempt, None)[0]

    def claim_and_start(
        self,
        task_id: str,
        holder: str,
        message: dict[str, Any],
        attempt: int,
        limit: int,
        started: tuple[str, str, int],
    ) -> tuple[Claim, bool]:
        """:meth:`claim`, and for a first delivery (no lease of the task yet) keep ``started``'s
        encoded ``STARTED`` meta in the lease, in the same transaction. Returns the claim
        and whether it was kept: then the run's ``STARTED`` is read from here
        (:meth:`started_of`) until the run stores another state or its lease is released.

        Any other claim (a delivery again, a retry, a reused id) keeps nothing, and its
        ``STARTED`` is stored as a result file, as Celery stores it: over the state an
        earlier delivery left there.
        """
        with self._transaction() as db:
            return self._claim(db, task_id, holder, message, attempt, started[1] if limit >= 1 else None)

    def _claim(
        self, db: Any, task_id: str, holder: str, message: dict[str, Any], attempt: int, started: str | None
    ) -> tuple[Claim, bool]:
        """The claim (see :meth:`claim`), and whether ``started`` was kept in the lease."""
        digest = digest_of(message)
        row = db.execute(
            "SELECT state, holder, attempt, deliveries, digest, message IS NOT NULL FROM lease WHERE task_id = ?",
            (task_id,),
        ).fetchone()
        if row is not None:
            # Not the first delivery (a delivery again, a retry, a reused id): its STARTED goes
            # to its result file, over the state the earlier delivery left there.
            started = None
        now = time.time()
        if row is not None and attempt > row[2]:
            row = None  # a later attempt (Celery's retry) starts the lease afresh
        state, previous_holder = (row[0], row[1]) if row is not None else ("", "")
        if state == DONE:
            if row[4] in (None, digest):
                return Claim(0, DONE, previous_holder, state), False
            row, state = None, REUSED  # another message under a finished task's id: a new task
        if state == RUNNING and self._is_alive(db, previous_holder, now):
            return Claim(0, RUNNING, previous_holder, state), False
        deliveries = (row[3] if row is not None else 0) + 1
        if row is not None and row[5]:  # it keeps the message of its first delivery
            db.execute(
                "UPDATE lease SET state = ?, holder = ?, attempt = ?, deliveries = ?, digest = ?, changed = ?, "
                "started = NULL WHERE task_id = ?",
                (RUNNING, holder, attempt, deliveries, digest, now, task_id),
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO lease (task_id, state, holder, attempt, deliveries, digest, message, "
                "changed, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task_id, RUNNING, holder, attempt, deliveries, digest, json.dumps(message), now, started),
            )
        return Claim(deliveries, None, previous_holder, state), started is not None

    def started_of(self, task_id: str) -> str | None:
        """The encoded ``STARTED`` meta :meth:`claim_and_start` kept for ``task_id``'s run in
        progress, or None."""
        with self._threads:
            row = (
                self._db()
                .execute("SELECT started FROM lease WHERE task_id = ? AND state = 'running'", (task_id,))
                .fetchone()
            )
        return row[0] if row is not None else None

    def release(self, runs: Iterable[tuple[str, int]], holder: str, state: str = DONE) -> None:
        now = time.time()
        rows = [(state, now, task_id, holder, attempt) for task_id, attempt in runs]
        if not rows:
            return
        # A finished task's message (and its token) goes; a lost one's is kept to deliver it again.
        with self._transaction() as db:
            db.executemany(_RELEASE_DONE if state == DONE else _RELEASE_KEEPING_MESSAGE, rows)

    def orphans(self) -> list[tuple[str, str]]:
        # Read without a transaction of its own: each SELECT sees one committed state.
        with self._threads:
            db = self._db()
            running = db.execute("SELECT task_id, holder FROM lease WHERE state = 'running'").fetchall()
            if not running:
                return []
            alive = {h for (h,) in db.execute("SELECT holder FROM alive WHERE expires > ?", (time.time(),))}
        return [(task_id, holder) for task_id, holder in running if holder not in alive]

    def take(self, task_id: str, holder: str, *, holder_alive: bool = False) -> Lease | None:
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, holder, deliveries, message FROM lease WHERE task_id = ?", (task_id,)
            ).fetchone()
            if row is None or row[0] != RUNNING or row[1] != holder:
                return None
            if not holder_alive and self._is_alive(db, holder, time.time()):
                return None
            db.execute(
                "UPDATE lease SET state = ?, started = NULL, changed = ? WHERE task_id = ?",
                (LOST, time.time(), task_id),
            )
        return Lease(task_id, int(row[2]), holder, _message(row[3]))

    def expire(self, now: float) -> int:
        """Forget the leases of tasks finished or lost more than :data:`DONE_RETENTION_SECONDS`
        before ``now``, and the heartbeats of workers gone as long; how many (the housekeeping's)."""
        before = now - DONE_RETENTION_SECONDS
        with self._transaction() as db:
            count = int(db.execute("DELETE FROM lease WHERE state != ? AND changed < ?", (RUNNING, before)).rowcount)
            count += int(db.execute("DELETE FROM alive WHERE expires < ?", (before,)).rowcount)
        return count


def _add_started_column(conn: Any) -> None:
    """Give a lease table made before the ``started`` column (an earlier girder-worker) that column."""
    import sqlite3

    if any(column[1] == "started" for column in conn.execute("PRAGMA table_info(lease)")):
        return
    try:
        conn.execute("ALTER TABLE lease ADD COLUMN started TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another process added it first
            raise


def _same_file(path: Path, opened: os.stat_result) -> bool:
    """Whether ``path`` is still the file that was ``opened`` (not removed, nor replaced)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)


def _message(stored: Any) -> dict[str, Any]:
    """A lease's stored message; {} for none, or for what is no JSON object."""
    try:
        found = json.loads(stored) if isinstance(stored, str) else None
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


#: One store per lease folder, for the result backend's reads: a backend is made per thread.
_shared: dict[Path, SqliteLeaseStore] = {}
_shared_lock = threading.Lock()


def shared_sqlite_store(folder: Path) -> SqliteLeaseStore:
    """This process's store of the lease database in ``folder``, made on first use."""
    with _shared_lock:
        store = _shared.get(folder)
        if store is None:
            store = _shared[folder] = SqliteLeaseStore(folder)
        return store


def lease_store_for(app: Any) -> LeaseStore | None:
    """The lease store the app's result backend offers, or None (rpc://, ...)."""
    found = durable_backend(app)
    if found is None:
        return None
    kind, where = found
    return RedisLeaseStore(where) if kind == "redis" else SqliteLeaseStore(where / "leases")

"""The embedded broker and result backend: files under one data directory.

kombu's filesystem transport writes a message file in place and moves claimed
files to the system temp directory; a reader can see a half-written file, and two
workers can both copy one message when the temp directory is another file system.
Its exchange tables have the same problem: a process binding a queue can read
the table while another is creating it. Here every file is written under a
hidden name and renamed into place, a consumer claims a message with one rename
inside the data directory, which only one process can win, and table updates
are serialised by a lock file.

The transport is built on kombu's documented virtual-transport API only
(:class:`kombu.transport.virtual.Channel` and ``Transport``: ``_put``, ``_get``,
``_purge``, ``_size``, ``_delete``, ``get_table``, ``_queue_bind``,
``_put_fanout``), which has not changed from kombu 5.4 to 5.7, and keeps its
exchange tables itself; it does not subclass kombu's filesystem transport, whose
private helpers differ between those releases.

Everything in the data directory is private to the worker's user (folders 0700,
files 0600; see :mod:`._private_files`), and nothing found there is trusted: a
queue entry that is not a message file (garbage, a half-written or foreign JSON
document, a symbolic link, a directory, a FIFO) is moved aside into the
``quarantine`` folder with one log line, never followed or opened blocking, and
the worker takes the next message. A data directory removed under a running
worker is made again, with the worker's queues bound anew. A message that cannot
be written (a full disk) raises :class:`EmbeddedBrokerWriteError` and leaves no
partial file.
"""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import functools
import hashlib
import logging
import os
import threading
import uuid
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from time import monotonic, monotonic_ns, sleep, time
from typing import Any, ClassVar

from celery.backends.filesystem import FilesystemBackend
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str, ensure_bytes, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

from .._celery_internals import queue_bindings
from ..delivery._gate import StartedGate
from ._private_files import NotAMessageFile, ensure_private_dir, open_private, read_regular_file, write_private

__all__ = ["EmbeddedBrokerWriteError", "FileResultBackend", "Transport", "envelope_problem"]

logger = logging.getLogger("girder_worker.embedded")

_NAME_MAX = 255

#: One row of an exchange table: what a binding routes to which queue.
exchange_queue_t = namedtuple("exchange_queue_t", ["routing_key", "pattern", "queue"])


class EmbeddedBrokerWriteError(Exception):
    """A message the embedded broker could not write (a full disk, ...); nothing was sent."""

    def __init__(self, folder: str, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0, "")
        reason = f"{exc.strerror or exc}" + (f" ({code})" if code else "")
        super().__init__(
            f"embedded broker: cannot write a message to {folder}: {reason}; nothing was sent (free space "
            "there, or set GIRDER_WORKER_DATA_DIR to a directory with room, on the clients and the workers alike)"
        )
        self.folder = folder
        self.errno = exc.errno


def _shown(name: str) -> str:
    """A file name as a log line may show it: escaped, and short."""
    text = ascii(name)
    return text if len(text) <= 200 else text[:197] + "..."


def envelope_problem(payload: Any) -> str | None:
    """Why a decoded queue entry is not a kombu message envelope, or None.

    What kombu and Celery take from an envelope without checking is checked here,
    so that a foreign document never reaches them.
    """
    if not isinstance(payload, dict):
        return f"it is a JSON {type(payload).__name__}, not a message envelope"
    properties = payload.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return "it has no 'properties' with a 'delivery_tag'"
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("exchange", "routing_key")):
        return "its 'delivery_info' has no 'exchange' and 'routing_key'"
    for key, kinds in (("headers", (dict, type(None))), ("content-type", (str, type(None)))):
        if not isinstance(payload.get(key), kinds):
            return f"its {key!r} is a JSON {type(payload.get(key)).__name__}"
    if not isinstance(payload.get("content-encoding"), (str, type(None))):
        return "its 'content-encoding' is not a string"
    body, encoding = payload.get("body"), properties.get("body_encoding")
    if not isinstance(body, (str, type(None))):
        return "its 'body' is not a string"
    if encoding not in (None, "base64"):
        return f"its body encoding {str(encoding)[:40]!r} is not base64"
    if encoding == "base64" and body:
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "its body is not base64"
    return None


_last_stamp = 0
_stamp_lock = threading.Lock()


def _stamp() -> str:
    """The sort key of a message's file name: milliseconds of the monotonic clock, then
    nanoseconds, strictly increasing in this process. Files are taken in name order, so one
    process's messages come out in the order it sent them; with milliseconds alone (as
    before) two messages of the same millisecond came out in the random order of their uuids
    (a task's "started" event before its "received")."""
    global _last_stamp
    with _stamp_lock:
        now = _last_stamp = max(monotonic_ns(), _last_stamp + 1)
    return f"{now // 1_000_000:015d}_{now % 1_000_000:06d}"


def _new_stamp_lock() -> None:
    global _stamp_lock
    _stamp_lock = threading.Lock()  # a fork may have copied it taken by another thread


os.register_at_fork(after_in_child=_new_stamp_lock)


class Channel(virtual.Channel):  # type: ignore[misc]
    """A channel on files, with atomic publish and claim, which survives what it finds."""

    supports_fanout = True
    _tables_lost = False

    @property
    def transport_options(self) -> dict[str, Any]:
        options: dict[str, Any] = self.connection.client.transport_options
        return options

    @cached_property
    def data_folder_in(self) -> str:
        return str(self.transport_options.get("data_folder_in", "data_in"))

    @cached_property
    def data_folder_out(self) -> str:
        return str(self.transport_options.get("data_folder_out", "data_out"))

    @cached_property
    def control_folder(self) -> Path:
        return Path(self.transport_options.get("control_folder", "control"))

    @cached_property
    def quarantine_folder(self) -> str:
        default = os.path.join(os.path.dirname(os.path.dirname(self.data_folder_in.rstrip(os.sep))), "quarantine")
        return str(self.transport_options.get("quarantine_folder") or default)

    @cached_property
    def max_entry_bytes(self) -> int:
        return int(self.transport_options.get("max_entry_bytes") or 0)

    @cached_property
    def processing_folder(self) -> str:
        return str(self.transport_options.get("processing_folder", self.data_folder_in))

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        folder = self.data_folder_out
        path = os.path.join(folder, f"{_stamp()}_{uuid.uuid4()}.{queue}.msg")
        data = str_to_bytes(dumps(payload))
        try:
            try:
                write_private(path, data, new=True)
            except FileNotFoundError:
                if not self._make_folders_again():
                    raise
                write_private(path, data, new=True)
        except OSError as exc:
            raise EmbeddedBrokerWriteError(folder, exc) from None

    def _put_fanout(self, exchange: str, payload: Any, routing_key: str, **kwargs: Any) -> None:
        for row in self.get_table(exchange):
            self._put(row.queue, payload, **kwargs)

    # -- exchange tables ---------------------------------------------------------

    def _exchange_file(self, exchange: str) -> Path:
        """The file of ``exchange``'s table: its name, or a name made from its hash."""
        name = f"{exchange}.exchange"
        if "/" in name or "\0" in name or name.startswith(".") or len(name.encode()) > _NAME_MAX - 40:
            name = f"exchange-{hashlib.sha256(exchange.encode('utf-8', 'surrogatepass')).hexdigest()}.exchange"
        return Path(self.control_folder, name)

    def get_table(self, exchange: str) -> list[Any]:
        file = self._exchange_file(exchange)
        try:
            payload = loads(bytes_to_str(read_regular_file(str(file), 0)))
            return [exchange_queue_t(*q) for q in payload]
        except FileNotFoundError:
            return []
        except NotAMessageFile as exc:
            problem = str(exc)
        except Exception as exc:
            problem = f"it is not a table of bindings ({type(exc).__name__})"
        self._quarantine(str(file), file.name, problem, kind="exchange table")
        self._tables_lost = True  # bound anew at the next poll, outside the table's lock
        return []

    def _update_table(self, exchange: str, change: Callable[[list[Any]], list[Any]]) -> None:
        file: Path = self._exchange_file(exchange)
        try:
            ensure_private_dir(self.control_folder)
            fd = open_private(file.with_name(f".{file.name}.lock"), os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise EmbeddedBrokerWriteError(str(self.control_folder), exc) from None
        with os.fdopen(fd, "ab") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                table = self.get_table(exchange)
                changed = change(table)
                if changed != table or not file.exists():
                    write_private(file, str_to_bytes(dumps(changed)))
            except OSError as exc:
                raise EmbeddedBrokerWriteError(str(self.control_folder), exc) from None
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda table: table if entry in table else [entry, *table])

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        self._purge(queue)
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda table: [e for e in table if e != entry])

    def _bind_anew(self) -> None:
        """Write every binding this process made into the exchange tables again."""
        self._tables_lost = False
        for (queue, exchange, routing_key), arguments in queue_bindings(self):
            try:
                meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
                self._queue_bind(exchange, *meta)
            except Exception as exc:  # one binding that cannot be written does not stop the others
                logger.warning("embedded broker: cannot bind queue %s again: %s", _shown(queue), exc)

    # -- the folders -------------------------------------------------------------

    def _make_folders_again(self) -> bool:
        """Make the broker's folders that are missing (the data directory was removed);
        True when one was. Each one made is reported once, by the process that made it."""
        wanted = (self.data_folder_in, self.data_folder_out, self.processing_folder, str(self.control_folder))
        made = [folder for folder in dict.fromkeys(wanted) if ensure_private_dir(Path(folder))]
        if made:
            logger.warning(
                "embedded broker: %s was missing (was the data directory removed?); made it again, mode 0700, "
                "and bound this process's queues anew",
                ", ".join(made),
            )
            self._bind_anew()
        return bool(made)

    def _quarantine(self, path: str, name: str, problem: str, kind: str = "queue entry") -> None:
        """Move ``path`` aside into the quarantine folder, with one log line."""
        folder = self.quarantine_folder
        aside = f"{int(time())}-{uuid.uuid4().hex[:8]}-{name}"[:_NAME_MAX]
        try:
            ensure_private_dir(Path(folder))
            os.rename(path, os.path.join(folder, aside))
        except OSError as exc:
            logger.error(
                "embedded broker: %s %s is not a message (%s) and cannot be moved to %s (%s); it is left where "
                "it is, and the worker goes on",
                kind,
                _shown(name),
                problem,
                folder,
                exc.strerror or exc,
            )
            return
        logger.warning(
            "embedded broker: moved %s %s into %s as %s: %s; the worker goes on",
            kind,
            _shown(name),
            folder,
            _shown(aside),
            problem,
        )

    # -- taking a message --------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Per queue, the names the last listing of the folder found and no claim tried
        #: yet, the newest first (so the oldest pops). A queue the listing found no
        #: message of has no entry; one whose names were all tried has an empty list.
        self._listed: dict[str, list[str]] = {}
        #: When this channel last listed the folder (monotonic seconds).
        self._listed_at = float("-inf")
        super().__init__(*args, **kwargs)

    def _list_all(self, queue: str) -> list[str]:
        """List the folder once, for every queue: the names of ``queue`` (kept in ``_listed``)."""
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            self._make_folders_again()
            raise Empty() from None
        listed: dict[str, list[str]] = {}
        for name in names:
            if name.endswith(".msg") and not name.startswith("."):
                listed.setdefault(name.partition(".")[2][:-4], []).append(name)
        for queue_names in listed.values():
            queue_names.sort(reverse=True)  # names begin with the publication time: the oldest last
        self._listed, self._listed_at = listed, monotonic()
        return listed.get(queue, [])

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        # The folder is listed only when the names of its last listing are used up: a
        # listing costs in proportion to the folder's backlog, so a listing per message
        # made a long queue ever slower to drain. A message published since waits for
        # the next listing, behind older ones, as a queue's order has it; a name that
        # another consumer claimed first is skipped, at the cost of a failed rename.
        #
        # One listing serves every queue the channel reads. A queue it found empty (a
        # worker's control and cancel queues, mostly) is looked at again by the next
        # listing, made once its own names run out or a polling interval later: each
        # of them listed the folder, backlog and all, at every turn of a busy worker.
        if self._tables_lost:
            self._bind_anew()
        names = self._listed.get(queue)
        fresh = False
        if not names:
            if names is None and monotonic() - self._listed_at < self._relist_after:
                raise Empty()  # none of this queue's a moment ago
            names, fresh = self._list_all(queue), True
        folder = self.data_folder_in
        while True:
            if not names:
                if fresh:
                    raise Empty()
                names, fresh = self._list_all(queue), True  # the names left were all claimed by others
                continue
            name = names.pop()
            claimed = os.path.join(self.processing_folder, name)
            try:
                os.rename(os.path.join(folder, name), claimed)
            except FileNotFoundError:
                if not os.path.isdir(self.processing_folder):
                    self._make_folders_again()
                continue  # another consumer claimed it first
            except OSError as exc:
                self._quarantine(os.path.join(folder, name), name, f"it cannot be claimed ({exc.strerror or exc})")
                continue
            payload = self._read_claimed(claimed, name)
            if payload is not None:
                return payload

    @cached_property
    def _relist_after(self) -> float:
        """How long a listing stands for the queues it found empty: the polling interval."""
        return float(getattr(self.connection, "polling_interval", None) or 0)

    def _read_claimed(self, claimed: str, name: str) -> Any:
        """The envelope in the file this consumer claimed; None when it held none
        (it is quarantined then)."""
        try:
            payload = loads(bytes_to_str(read_regular_file(claimed, self.max_entry_bytes)))
            problem = envelope_problem(payload)
        except NotAMessageFile as exc:
            problem = str(exc)
        except Exception as exc:  # bad UTF-8, bad JSON, a kombu type that does not decode
            problem = f"it is not a JSON message ({type(exc).__name__}: {str(exc)[:100]})"
        if problem is not None:
            self._quarantine(claimed, name, problem)
            return None
        os.unlink(claimed)
        return payload

    def _purge(self, queue: str) -> int:
        self._listed.pop(queue, None)
        wanted = f"{queue}.msg"
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            return 0
        count = 0
        for name in names:
            if name.partition(".")[2] == wanted and not name.startswith("."):
                try:
                    os.unlink(os.path.join(self.data_folder_in, name))  # a directory stays, for _get to set aside
                    count += 1
                except OSError:
                    pass
        return count

    def _size(self, queue: str) -> int:
        wanted = f"{queue}.msg"
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            return 0
        return sum(1 for name in names if name.partition(".")[2] == wanted and not name.startswith("."))


class Transport(virtual.Transport):  # type: ignore[misc]
    """The embedded broker's kombu transport (fanout included, for revoke)."""

    Channel = Channel
    implements = virtual.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic", "fanout"]),
    )
    #: Exchanges and bindings declared in this process, per data directory: shared by the
    #: process's connections to one directory, so a binding is written to its table once,
    #: and not by a connection to another directory, whose tables need their own rows.
    _states: ClassVar[dict[str, virtual.BrokerState]] = {}
    default_port = 0  # type: ignore[assignment]
    driver_type = "filesystem"
    driver_name = "girder-worker-embedded"
    # The URL is only "filesystem://": the folders come from the transport options.
    can_parse_url = True

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options if client is not None else {}
        folder = os.path.abspath(str(options.get("data_folder_in", "data_in")))
        self.state = self._states.setdefault(folder, virtual.BrokerState())

    def driver_version(self) -> str:
        return "N/A"

    #: How often a worker whose processes are all busy looks whether one is free again.
    busy_recheck_interval = 0.001

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:  # type: ignore[override]
        # Celery's loop for transports without an event loop waits up to 2 s here
        # before it looks at a shutdown request; a worker would take that long to
        # start stopping after Ctrl-C.
        if timeout is not None:
            timeout = min(timeout, 0.2)
        started = monotonic()
        while True:
            try:
                # With a timeout of 0 the virtual transport's drain looks at every
                # consumed queue once, and raises TimeoutError when none had a message.
                return super().drain_events(connection, timeout=0)
            except TimeoutError:
                pass
            if timeout is not None and monotonic() - started >= timeout:
                raise TimeoutError()  # what Celery expects of an idle drain (socket.timeout)
            self._wait_before_polling()

    def _wait_before_polling(self) -> None:
        """Sleep until the next poll of the folders, or until a busy worker has a free process.

        With fair dispatch a worker whose processes are all busy does not read the
        queue; once one frees, it looks again within a millisecond (a check of its
        own counters, no file system access) rather than at the next 20 ms poll.
        """
        deadline = monotonic() + (self.polling_interval or 0)
        busy = [ch.qos for ch in self.channels if not ch.qos.can_consume()]
        while busy and monotonic() < deadline:
            sleep(self.busy_recheck_interval)
            if all(qos.can_consume() for qos in busy):
                return
        remaining = deadline - monotonic()
        if remaining > 0:
            sleep(remaining)

    def as_uri(self, uri: str, include_password: bool = False, mask: str = "**") -> str:
        options = self.client.transport_options if self.client is not None else {}
        folder = options.get("data_folder_in", "")
        return f"filesystem://{os.path.dirname(folder.rstrip(os.sep))}"


def _safe_key(key: bytes) -> bytes:
    """``key`` when it is a safe file name, else a name made from its hash."""
    # Room for write_private's hidden name around it.
    if b"/" in key or b"\0" in key or key in (b".", b"..") or len(key) > _NAME_MAX - 25:
        return b"celery-unsafe-key-" + hashlib.sha256(key).hexdigest().encode()
    return key


class FileResultBackend(StartedGate, FilesystemBackend):  # type: ignore[misc]
    """Celery's file result backend, polled often enough for a quick round trip.

    Each result is written as a 0600 file under a hidden name and renamed into
    place, so a client never reads half a result; a key that is no safe file name
    (a task id such as ``a/b``) is stored under a name made from its hash; a
    results folder removed under a running worker is made again. A run refused by its
    admission stores no ``STARTED`` (see :mod:`girder_worker.delivery._gate`).

    A first delivery's ``STARTED`` is no file: the run's lease claim keeps it in the
    lease database, in the claim's transaction (:meth:`started_record`), and a read
    of a task's state that finds no file of it reads it there while the run is in
    progress. A run so writes one result file (its outcome) instead of two. Any later
    state is a file, which a read finds first.
    """

    poll_interval = 0.02

    def _do_directory_test(self, key: bytes) -> None:
        # Celery writes a test file here, which fails on a full disk before any task is
        # sent; the configuration has checked the folder already (see _config._private_dir).
        ensure_private_dir(Path(os.fsdecode(self.path)))

    def _filename(self, key: bytes) -> bytes:
        joined: bytes = self.sep.join((self.path, _safe_key(ensure_bytes(key))))
        return joined

    def started_record(self, task_id: str, request: Any) -> tuple[str, str, int] | None:
        """The key, value and lifetime of the ``STARTED`` state Celery's tracer would store for
        ``request``'s run, for its lease claim to keep; None when a result file of the task is
        there already (a state it must replace, as Celery would) or the meta is not JSON."""
        key = self.get_key_for_task(task_id)
        if os.path.lexists(self._filename(key)):
            return None
        value = self.started_meta(task_id, request)
        return None if value is None else (bytes_to_str(key), value, 0)

    def _store_result(  # Celery's per-state store hook (key-value backends)
        self, task_id: Any, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        # Celery reads the stored state first, not to replace a SUCCESS: the lease's STARTED
        # never is one, so that read is of the file alone (no lease database query per state).
        # Should a Celery release store otherwise, the read queries the lease too: slower, same answer.
        self._storing.active = True
        try:
            return super()._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        finally:
            self._storing.active = False

    @functools.cached_property  # (kombu's takes a lock at every read: read at every state stored)
    def _storing(self) -> threading.local:
        return threading.local()

    def get(self, key: bytes) -> Any:
        """The stored value of ``key``: its file, else the ``STARTED`` its run's lease keeps."""
        value = super().get(key)
        if value is not None or getattr(self._storing, "active", False):
            return value
        key = ensure_bytes(key)
        prefix = ensure_bytes(self.task_keyprefix)
        if not key.startswith(prefix):
            return None
        try:
            started = self._leases.started_of(os.fsdecode(key[len(prefix) :]))
        except Exception as exc:  # what a client reads must not fail for it: the task looks pending
            logger.debug("result backend: could not read the lease database: %s", exc)
            return None
        return None if started is None else str_to_bytes(started)

    @functools.cached_property
    def _leases(self) -> Any:
        from ..delivery._leases import shared_sqlite_store

        return shared_sqlite_store(Path(os.fsdecode(self.path)).parent / "leases")

    def set(self, key: bytes, value: Any) -> None:
        path = os.fsdecode(self._filename(key))
        try:
            write_private(path, ensure_bytes(value))
        except FileNotFoundError:
            if not ensure_private_dir(Path(os.fsdecode(self.path))):
                raise
            logger.warning("result backend: %s was missing; made it again, mode 0700", os.fsdecode(self.path))
            write_private(path, ensure_bytes(value))

    def wait_for(
        self,
        task_id: str,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_interval: Any = None,
    ) -> Any:
        return super().wait_for(
            task_id,
            timeout=timeout,
            interval=min(interval, self.poll_interval),
            no_ack=no_ack,
            on_interval=on_interval,
        )

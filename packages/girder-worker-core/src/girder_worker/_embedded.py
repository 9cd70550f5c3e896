"""The embedded broker and result backend: files under one data directory.

kombu's filesystem transport writes a message file in place and moves claimed
files to the system temp directory; a reader can see a half-written file, and two
workers can both copy one message when the temp directory is another file system.
Its exchange tables have the same problem: a process binding a queue can read
the table while another is creating it. Here every file is written under a
hidden name and renamed into place, a consumer claims a message with one rename
inside the data directory, which only one process can win, and table updates
are serialised by a lock file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from time import monotonic, sleep
from typing import Any

from celery.backends.filesystem import FilesystemBackend
from kombu.transport import filesystem
from kombu.transport.filesystem import LOCK_EX, exchange_queue_t, lock, unlock
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

__all__ = ["FileResultBackend", "Transport"]


class Channel(filesystem.Channel):  # type: ignore[misc]
    """A filesystem channel with atomic publish and claim."""

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{int(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        with open(partial, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)

    def get_table(self, exchange: str) -> list[Any]:
        try:
            text = self._exchange_file(exchange).read_bytes()
        except FileNotFoundError:
            return []
        return [exchange_queue_t(*q) for q in loads(bytes_to_str(text))]

    def _update_table(self, exchange: str, change: Callable[[list[Any]], list[Any]]) -> None:
        file: Path = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(file.with_name(f".{file.name}.lock"), "ab") as guard:
            lock(guard, LOCK_EX)
            try:
                table = change(self.get_table(exchange))
                partial = file.with_name(f".{file.name}.{uuid.uuid4().hex}")
                partial.write_bytes(str_to_bytes(dumps(table)))
                os.replace(partial, file)
            finally:
                unlock(guard)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda table: table if entry in table else [entry, *table])

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._update_table(exchange, lambda table: [e for e in table if e != entry])

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        wanted = f"{queue}.msg"
        folder = self.data_folder_in
        claimed_dir = self.transport_options.get("processing_folder", folder)
        # Filter before sorting: every idle poll of every consumer lists the folder.
        suffix = f".{wanted}"
        mine = [n for n in os.listdir(folder) if n.endswith(suffix) and n.partition(".")[2] == wanted]
        for name in sorted(mine):
            if name.startswith("."):
                continue
            claimed = os.path.join(claimed_dir, name)
            try:
                os.rename(os.path.join(folder, name), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            with open(claimed, "rb") as f:
                payload = f.read()
            os.unlink(claimed)
            return loads(bytes_to_str(payload))
        raise Empty()


class Transport(filesystem.Transport):  # type: ignore[misc]
    """The embedded broker's kombu transport (fanout included, for revoke)."""

    Channel = Channel
    driver_type = "filesystem"
    driver_name = "girder-worker-embedded"
    # The URL is only "filesystem://": the folders come from the transport options.
    can_parse_url = True

    #: How often a worker whose processes are all busy looks whether one is free again.
    busy_recheck_interval = 0.001

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:  # type: ignore[override]
        # Celery's loop for transports without an event loop waits up to 2 s here
        # before it looks at a shutdown request; a worker would take that long to
        # start stopping after Ctrl-C.
        if timeout is not None:
            timeout = min(timeout, 0.2)
        started = monotonic()
        get = self.cycle.get  # type: ignore[union-attr]  # made with the transport's first channel
        while True:
            try:
                get(self._deliver, timeout=timeout)
                return
            except Empty:
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
        busy = [ch.qos for ch in self.channels if ch._consumers and not ch.qos.can_consume()]
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


class FileResultBackend(FilesystemBackend):  # type: ignore[misc]
    """Celery's file result backend, polled often enough for a quick round trip."""

    poll_interval = 0.02

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

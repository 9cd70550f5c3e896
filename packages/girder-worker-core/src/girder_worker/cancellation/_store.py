"""Where cancellations outlive the workers: the result backend.

Celery keeps revoked ids in each worker's memory, so a revoke sent while no worker
runs, or before a restart, is forgotten. girder-worker also writes each cancelled
id to the result backend (a Redis sorted set, or files next to the embedded
backend's results), and every worker reads the recent ones when it starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from ..broker._private_files import ensure_private_dir, open_private

__all__ = ["CancelStore", "durable_backend", "store_for"]

#: How long a cancellation is remembered: longer than a task waits in a queue.
RETENTION_SECONDS = 7 * 24 * 3600


class CancelStore(Protocol):
    def add(self, task_ids: Iterable[str]) -> None: ...
    def recent(self) -> list[str]: ...


class RedisCancelStore:
    key = "girder_worker:cancelled"

    def __init__(self, client: Any) -> None:
        self.client = client

    def add(self, task_ids: Iterable[str]) -> None:
        now = time.time()
        members = dict.fromkeys(task_ids, now)
        if members:
            pipe = self.client.pipeline()
            pipe.zadd(self.key, members)
            pipe.zremrangebyscore(self.key, "-inf", now - RETENTION_SECONDS)
            pipe.execute()

    def recent(self) -> list[str]:
        since = time.time() - RETENTION_SECONDS
        return [m.decode() if isinstance(m, bytes) else m for m in self.client.zrangebyscore(self.key, since, "+inf")]


class FileCancelStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, task_ids: Iterable[str]) -> None:
        ensure_private_dir(self.folder)
        for task_id in task_ids:
            if task_id and "/" not in task_id and "\0" not in task_id and not task_id.startswith("."):
                try:
                    fd = open_private(self.folder / task_id, os.O_WRONLY)
                except OSError:  # a name too long, or not a file: the broadcast still cancels it
                    continue
                os.utime(fd)
                os.close(fd)

    def recent(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        since = time.time() - RETENTION_SECONDS
        ids = []
        for entry in os.scandir(self.folder):
            if not entry.is_file(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_mtime >= since:
                ids.append(entry.name)
            else:
                Path(entry.path).unlink(missing_ok=True)
        return ids


def durable_backend(app: Any) -> tuple[str, Any] | None:
    """``("redis", client)`` or ``("files", folder)`` for a backend that can hold
    girder-worker's records (cancellations, leases); None for one that cannot (rpc://)."""
    backend = app.backend
    kinds = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(backend).__mro__}
    # By name, so that a worker that uses neither does not import Redis's client.
    if "celery.backends.redis.RedisBackend" in kinds:
        return "redis", backend.client
    if "celery.backends.filesystem.FilesystemBackend" in kinds:
        return "files", Path(os.fsdecode(backend.path)).parent
    return None


def store_for(app: Any) -> CancelStore | None:
    """The durable store the app's result backend offers, or None (rpc://, ...)."""
    found = durable_backend(app)
    if found is None:
        return None
    kind, where = found
    return RedisCancelStore(where) if kind == "redis" else FileCancelStore(where / "cancelled")

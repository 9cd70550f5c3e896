"""Housekeeping of the embedded broker's data directory: what expires, and when.

A Redis result backend forgets on its own: result keys expire after Celery's
``result_expires`` (one day by default), the cancel set drops entries older than
:data:`girder_worker.cancellation._store.RETENTION_SECONDS` (seven days), and a finished task's lease
key expires after :data:`girder_worker.delivery._leases.DONE_RETENTION_SECONDS` (one day). Files do not,
so a worker on the embedded backend sweeps the same out of its data directory, at
most once every :data:`SWEEP_INTERVAL_SECONDS`, in its lease heartbeat thread:

* ``results/``: a result file older than ``result_expires`` (none when it is unset);
* ``cancelled/``: a cancellation older than seven days;
* the lease database (``leases/leases.sqlite3``): the lease of a task finished or
  lost more than a day ago (never a running one's), and the heartbeat of a worker gone
  for more than a day; in ``leases/``, ``leases/done/`` and ``leases/alive/``, the same
  as files, which releases before the database wrote;
* hidden ``.part`` files (a write that a crash interrupted) older than a day, in those
  folders and in ``broker/queue/``.

The ``quarantine`` folder is left to the operator: what is there was set aside to be
looked at. Only regular files are removed, never through a symbolic link.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..cancellation._store import RETENTION_SECONDS as CANCEL_RETENTION_SECONDS
from ..delivery._leases import DONE_RETENTION_SECONDS, RUNNING

__all__ = ["SWEEP_INTERVAL_SECONDS", "Sweep", "result_expiry", "sweep"]

logger = logging.getLogger("girder_worker.embedded")

#: The shortest time between two sweeps of one worker.
SWEEP_INTERVAL_SECONDS = 10 * 60

#: How old an interrupted write's hidden file must be before it is removed.
PARTIAL_RETENTION_SECONDS = 24 * 3600


@dataclass
class Sweep:
    """What one sweep removed, by folder."""

    removed: dict[str, int] = field(default_factory=dict)

    def count(self, folder: str) -> None:
        self.removed[folder] = self.removed.get(folder, 0) + 1


def result_expiry(setting: Any) -> float | None:
    """Celery's ``result_expires`` in seconds; None when results are kept."""
    if isinstance(setting, timedelta):
        seconds = setting.total_seconds()
    elif isinstance(setting, (int, float)):
        seconds = float(setting)
    else:
        return None
    return seconds if seconds > 0 else None


def _old_files(folder: Path, before: float) -> list[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    old = []
    for entry in entries:
        try:
            found = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(found.st_mode) and found.st_mtime < before:
            old.append(entry)
    return old


def _remove(entry: os.DirEntry[str], folder: str, done: Sweep) -> None:
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        return  # another worker's sweep was first
    except OSError as exc:
        logger.warning("embedded broker: cannot remove expired %s/%s: %s", folder, entry.name, exc.strerror or exc)
        return
    done.count(folder)


def _lease_is_running(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            lease = json.loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return False  # not a lease: counts as none
    return isinstance(lease, dict) and lease.get("state") == RUNNING


#: Where :func:`sweep` counts the rows the lease database forgot (the others are folders).
LEASE_DATABASE = "the lease database"


def _count_in(place: str, n: int) -> str:
    return f"{n} in {place}" if place == LEASE_DATABASE else f"{n} in {place}/"


def sweep(data_dir: Path, result_expires: float | None, now: float, leases: Any = None) -> Sweep:
    """Remove what has expired under ``data_dir`` at time ``now`` (seconds since the epoch);
    ``leases`` is the data directory's lease store (its ``expire(now)``), if the caller has it."""
    done = Sweep()
    if leases is not None:
        for _ in range(leases.expire(now)):
            done.count(LEASE_DATABASE)
    partial_before = now - PARTIAL_RETENTION_SECONDS
    for folder in ("results", "cancelled", "leases", "leases/done", "broker/queue"):
        for entry in _old_files(data_dir / folder, partial_before):
            if entry.name.startswith(".") and entry.name.endswith(".part"):
                _remove(entry, folder, done)
    if result_expires is not None:
        for entry in _old_files(data_dir / "results", now - result_expires):
            if not entry.name.startswith("."):
                _remove(entry, "results", done)
    for entry in _old_files(data_dir / "cancelled", now - CANCEL_RETENTION_SECONDS):
        if not entry.name.startswith("."):
            _remove(entry, "cancelled", done)
    # Lease files of girder-worker releases before the lease database (leases/leases.sqlite3).
    for entry in _old_files(data_dir / "leases", now - DONE_RETENTION_SECONDS):
        if entry.name.endswith(".json") and not entry.name.startswith(".") and not _lease_is_running(entry.path):
            _remove(entry, "leases", done)
    for entry in _old_files(data_dir / "leases" / "done", now - DONE_RETENTION_SECONDS):
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            _remove(entry, "leases/done", done)  # finished: no need to read it
    # A heartbeat file's time is when it runs out; a live worker's is always ahead.
    for entry in _old_files(data_dir / "leases" / "alive", now - DONE_RETENTION_SECONDS):
        _remove(entry, "leases/alive", done)
    if done.removed:
        logger.info(
            "embedded broker: removed what expired (%s)",
            ", ".join(_count_in(folder, n) for folder, n in sorted(done.removed.items())),
        )
    return done

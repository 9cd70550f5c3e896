"""What a worker lets an analysis reach, and how much data it may hold.

A task message comes from anyone who can publish to the broker, so its bindings
are checked against the worker's own configuration before they are used:

* ``local`` bindings and ``file://`` URLs only under the directories of
  ``GIRDER_WORKER_LOCAL_PATHS`` (none by default), after ``..`` is refused and
  symbolic links are resolved;
* ``http`` bindings only to the hosts of ``GIRDER_WORKER_HTTP_ALLOWED_HOSTS``
  (any by default), with the methods a binding's direction needs;
* fetched data up to ``GIRDER_WORKER_MAX_DATA_BYTES``, and table and tree
  conversions within a memory budget proportional to it (a CSV whose header
  names thousands of fields and whose lines give one value each becomes
  rows x fields cells in memory: 17 kB made 6 million).

The budget of the current run is a context variable, so converters, which get
their data alone, see it too::

    with data_limit(1024 * 1024):
        check_cells(10_000, 100, "a table")  # ValueError: 1,000,000 cells, more than 65,536
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlsplit

from .._paths import is_under
from ._errors import BindingNotAllowed

__all__ = [
    "ALLOW_PYTHON_MODE",
    "HTTP_ALLOWED_HOSTS",
    "LOCAL_PATHS",
    "MAX_DATA_BYTES",
    "check_cells",
    "check_host",
    "check_nodes",
    "data_limit",
    "local_path",
    "max_data_bytes",
]

#: The worker setting that lets the ``python`` mode run code taken from the message (off by default).
ALLOW_PYTHON_MODE = "GIRDER_WORKER_ALLOW_PYTHON_MODE"

LOCAL_PATHS = "GIRDER_WORKER_LOCAL_PATHS"
HTTP_ALLOWED_HOSTS = "GIRDER_WORKER_HTTP_ALLOWED_HOSTS"
MAX_DATA_BYTES = "GIRDER_WORKER_MAX_DATA_BYTES"
DEFAULT_MAX_DATA_BYTES = 64 * 1024 * 1024

#: Bytes of the budget per table cell and per tree node: what one costs in memory
#: (measured: about 25 bytes a padded cell, 500 a Newick node), with room to convert.
BYTES_PER_CELL = 16
BYTES_PER_NODE = 256

_limit: ContextVar[int] = ContextVar("girder_worker_max_data_bytes", default=DEFAULT_MAX_DATA_BYTES)


def max_data_bytes() -> int:
    """The data budget of the run in progress (the default outside a run)."""
    return _limit.get()


@contextmanager
def data_limit(limit: int) -> Iterator[None]:
    """Make ``limit`` the data budget of what runs inside the ``with`` block."""
    token = _limit.set(limit)
    try:
        yield
    finally:
        _limit.reset(token)


def check_cells(rows: int, fields: int, what: str = "the table") -> None:
    """ValueError when ``rows`` x ``fields`` cells are more than the budget allows."""
    most = max(1, max_data_bytes() // BYTES_PER_CELL)
    if rows * fields > most:
        raise ValueError(
            f"{what} would have {rows:,} rows x {fields:,} fields = {rows * fields:,} cells, more than "
            f"{most:,} ({MAX_DATA_BYTES} / {BYTES_PER_CELL}); raise {MAX_DATA_BYTES} on the worker to convert it"
        )


def check_nodes(nodes: int, what: str = "the tree") -> None:
    """ValueError when ``nodes`` tree nodes are more than the budget allows."""
    most = max(1, max_data_bytes() // BYTES_PER_NODE)
    if nodes > most:
        raise ValueError(
            f"{what} has more than {most:,} nodes ({MAX_DATA_BYTES} / {BYTES_PER_NODE}); raise {MAX_DATA_BYTES} "
            "on the worker to convert it"
        )


def local_path(given: object, allowed: tuple[str, ...], what: str) -> Path:
    """The real path of a local binding's ``given`` path, when it lies in an allowed directory.

    ``allowed`` holds real (symlink-resolved) absolute directories. Raises
    :class:`BindingNotAllowed` with the setting to change.
    """
    if not allowed:
        raise BindingNotAllowed(
            f"{what}: local bindings and file:// URLs read and write files on the worker, and this worker "
            f"allows no directory for them; set {LOCAL_PATHS} in the worker's environment to the directories "
            "they may use to allow them"
        )
    text = str(given)
    if "\0" in text or not os.path.isabs(text) or ".." in Path(text).parts:
        raise BindingNotAllowed(f"{what}: the local path {text[:200]!r} is not an absolute path without '..'")
    real = os.path.realpath(text)
    if not any(is_under(real, top) for top in allowed):
        raise BindingNotAllowed(
            f"{what}: {text[:200]!r} is outside the directories {LOCAL_PATHS} allows ({', '.join(allowed)})"
        )
    return Path(real)


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    host = host.lower().rstrip(".")
    return host in allowed or any(a.startswith("*.") and host.endswith(a[1:]) for a in allowed)


def check_host(url: str, allowed: frozenset[str] | None, what: str, shown: str) -> None:
    """:class:`BindingNotAllowed` unless ``url`` is http(s) to a host the worker allows."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise BindingNotAllowed(f"{what}: {shown} is not an http:// or https:// URL")
    host = parts.hostname or ""
    if allowed is not None and not host_allowed(host, allowed):
        raise BindingNotAllowed(
            f"{what}: host {host[:100]!r} of {shown} is not in {HTTP_ALLOWED_HOSTS} "
            f"({', '.join(sorted(allowed))}); add it there in the worker's environment to allow it"
        )

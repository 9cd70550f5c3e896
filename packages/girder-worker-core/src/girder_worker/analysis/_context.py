"""What modes and binding handlers are given besides their data."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["BindingContext", "RunContext"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _no_check() -> None:
    pass


@dataclass
class RunContext:
    """One run of an analysis: where its files go and what the worker allows.

    Attributes:
        registry: the types, formats, converters, modes and bindings to use.
        tempdir: this run's own directory, removed when the run ends (unless the
            caller asked to keep it).
        allow_python_mode: whether the ``python`` mode may run (the worker's
            ``GIRDER_WORKER_ALLOW_PYTHON_MODE``).
        job_manager: the Girder job to report to (``self.job_manager`` of the
            Celery task), or None. Nested runs (workflow steps) have none.
        check_cancelled: raises ``TaskCancelled`` once the run was cancelled.
        girder_api_url, girder_token: what a ``girder`` binding uses when it names
            no ``api_url`` or ``token`` (the message's ``girder_api_url`` and
            ``girder_client_token``).
        local_paths: the real directories ``local`` bindings may read and write
            (the worker's ``GIRDER_WORKER_LOCAL_PATHS``); none by default.
        http_allowed_hosts: the hosts ``http`` bindings may reach, or None for any
            (``GIRDER_WORKER_HTTP_ALLOWED_HOSTS``).
        max_data_bytes: the most bytes an input binding fetches, and the memory
            budget of table and tree conversions (``GIRDER_WORKER_MAX_DATA_BYTES``).
    """

    registry: Registry
    tempdir: Path
    allow_python_mode: bool = False
    job_manager: Any = None
    check_cancelled: Callable[[], None] = _no_check
    girder_api_url: str | None = None
    girder_token: str | None = None
    local_paths: tuple[str, ...] = ()
    http_allowed_hosts: frozenset[str] | None = None
    max_data_bytes: int = 64 * 1024 * 1024

    def nested(self, name: str) -> RunContext:
        """The context of a step run inside this one: its own directory, no job reporting."""
        tempdir = Path(tempfile.mkdtemp(prefix=f"{safe_name(name)}-", dir=self.tempdir))
        return replace(self, tempdir=tempdir, job_manager=None)


@dataclass(frozen=True)
class BindingContext:
    """What a binding handler gets with its binding.

    Attributes:
        what: the port in words, for messages: ``"input 'a'"``.
        run: the run's :class:`RunContext`.
        want_file: (fetch) the task takes this input as a file; the handler may
            write it under ``run.tempdir`` and return its :class:`~pathlib.Path`.
        filename: (fetch) a safe file name to use for it.
    """

    what: str
    run: RunContext
    want_file: bool = False
    filename: str = "data"


def safe_name(name: str) -> str:
    """``name`` reduced to characters that are safe in a file name."""
    cleaned = _UNSAFE.sub("_", name).strip("._")
    return cleaned[:100] or "data"

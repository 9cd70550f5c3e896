"""What a run's admission leaves on its Celery request, for the steps that come after it.

A run claims its task's lease in the process that runs it, from a ``task_prerun``
receiver (:mod:`._admission`), before Celery stores ``STARTED`` and before the
task's body begins. What it decides is read here by the steps after it:

* a run refused by the admission carries the exception it ends with under
  :data:`~girder_worker_utils.worker.REFUSAL_ATTR`; the task class raises it
  before its body begins. A duplicate delivery ends with :class:`DuplicateRun`
  (Celery's ``Ignore``: nothing is stored, nothing is reported to Girder), a run
  past its delivery limit with :class:`~girder_worker_utils.TaskLost`;
* a run whose ``STARTED`` state the admission stored together with the claim (one
  round trip to Redis) is marked with :data:`STARTED_STORED`.

:class:`StartedGate` is the part the result backends take: it skips the
``STARTED`` store Celery makes after the ``task_prerun`` signal for either kind
of run. Without it, a duplicate would write ``STARTED`` over the result of the
run it duplicates, for good.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from celery import states
from celery.exceptions import Ignore

from girder_worker_utils.worker import REFUSAL_ATTR

from .._celery_internals import encoded_result_meta

__all__ = ["LEASE_KEY", "STARTED_STORED", "DuplicateRun", "StartedGate", "dropped"]

#: The key of a run's lease in the request the worker's main process hands to the pool.
LEASE_KEY = "girder_worker_lease"
#: The request attribute saying that the admission stored the run's ``STARTED`` already.
STARTED_STORED = "girder_worker_started_stored"


class DuplicateRun(Ignore):  # type: ignore[misc]
    """A task delivered again while it runs elsewhere, or after it finished: its run is dropped."""

    def __init__(self, where: str = "") -> None:
        super().__init__(where)
        #: "after it finished", or "while worker NAME runs it".
        self.where = where


def dropped(request: Any) -> bool:
    """Whether the run of ``request`` was dropped as a duplicate: nothing of it is reported."""
    return isinstance(getattr(request, "__dict__", {}).get(REFUSAL_ATTR), DuplicateRun)


class StartedGate:
    """A result backend that does not store ``STARTED`` for a run whose admission said so."""

    # functools' (not kombu's, which takes a lock at every read): read at every state stored.
    @cached_property
    def _extended(self) -> bool:
        """``result_extended``, read once: see encoded_result_meta."""
        return bool(self.app.conf.find_value_for_key("extended", "result"))  # type: ignore[attr-defined]

    def started_meta(self, task_id: str, request: Any) -> str | None:
        """The encoded ``STARTED`` meta Celery's tracer would store for ``request``'s run in
        this process, or None when it must be stored Celery's way (not JSON)."""
        if self.serializer != "json":  # type: ignore[attr-defined]
            return None
        meta = {"pid": os.getpid(), "hostname": getattr(request, "hostname", None)}
        value = encoded_result_meta(self, task_id, meta, states.STARTED, None, request, extended=self._extended)
        return value if isinstance(value, str) else None

    def store_result(
        self, task_id: Any, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        if state == states.STARTED and request is not None:
            marks = getattr(request, "__dict__", None)
            if isinstance(marks, dict) and (REFUSAL_ATTR in marks or marks.pop(STARTED_STORED, False)):
                return result
        return super().store_result(  # type: ignore[misc]
            task_id, result, state, traceback=traceback, request=request, **kwargs
        )

"""Admission: a run claims its task's lease in the process that runs it, before it begins.

The worker's main process hands each run of a girder-worker task what its lease
needs (the worker's holder name, the delivery attempt, the task's policy and its
message, see :meth:`~girder_worker.delivery._delivery.Delivery.admit`) under
:data:`~girder_worker.delivery._gate.LEASE_KEY`. Here, in the process that runs
it, the ``task_prerun`` receiver claims the lease, first among girder-worker's
receivers of that signal:

* the claim and the run's ``STARTED`` state are one write: with the Redis result
  backend one Lua script, one round trip; with the embedded backend's files, one
  transaction of the lease database, which keeps a first delivery's ``STARTED``
  meta for the result backend to read (no result file is written for it). Celery's
  ``STARTED`` store after the signal is then skipped;
* the claim's :func:`~girder_worker.delivery._delivery.verdict` decides: a duplicate
  delivery ends with :class:`~girder_worker.delivery._gate.DuplicateRun`, a run past
  its delivery limit with :class:`~girder_worker_utils.TaskLost`, raised by the task
  class before the task's body begins; the worker's main process sees either in the
  run's result and says what became of it;
* a lease store that does not answer is said once, in one line, and the run goes on
  without crash protection, as when the main process claims.

So the main process makes no round trip for a run's lease, and in a prefork
worker the claims of different runs are made in parallel, by their processes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals

from girder_worker_utils.worker import REFUSAL_ATTR

from ._delivery import Policy, verdict
from ._gate import LEASE_KEY, STARTED_STORED
from ._leases import Claim, LeaseStore, lease_store_for

__all__ = ["admit_run"]

logger = logging.getLogger("girder_worker.delivery")

#: This process's lease store per app: (process id, store), made again in a forked process.
_stores: dict[int, tuple[int, LeaseStore | None]] = {}
_failing = False


def _store_of(app: Any) -> LeaseStore | None:
    found = _stores.get(id(app))
    if found is None or found[0] != os.getpid():
        found = _stores[id(app)] = (os.getpid(), lease_store_for(app))
    return found[1]


def _stores_started(task: Any, request: Any) -> bool:
    """Whether Celery's tracer surely stores ``STARTED`` for this run: the task tracks it
    and neither the task nor the message ignores results. (Where a message's
    ``ignore_result=False`` overrides a task's, Celery 5.7 stores it too; the claim is
    then made alone.)"""
    return bool(task.track_started) and not task.ignore_result and not request.__dict__.get("ignore_result")


def _claim(store: LeaseStore, task: Any, request: Any, lease: dict[str, Any], policy: Policy) -> Claim:
    task_id, holder, message, attempt = request.id, lease["holder"], lease["message"], int(lease["attempt"])
    backend = task.backend
    record = getattr(backend, "started_record", None)
    if record is not None and _stores_started(task, request):
        started = record(task_id, request)
        if started is not None:
            claim, stored = store.claim_and_start(task_id, holder, message, attempt, policy.limit, started)
            if stored:
                request.__dict__[STARTED_STORED] = True
            return claim
    return store.claim(task_id, holder, message, attempt)


def admit_run(task: Any, request: Any, lease: dict[str, Any]) -> BaseException | None:
    """Claim the lease of ``request``'s run; the exception it must end with, or None when it runs."""
    global _failing
    store = _store_of(task.app)
    if store is None:
        return None
    mode, max_deliveries = lease["policy"]
    policy = Policy(mode, int(max_deliveries))
    try:
        claim = _claim(store, task, request, lease, policy)
    except Exception as exc:
        if not _failing:  # said once per process; the main process says when the store answers again
            _failing = True
            logger.error(
                "could not claim the lease of task %s[%s] (%s); it runs without crash protection",
                task.name,
                request.id,
                exc,
            )
        return None
    _failing = False
    return verdict(claim, policy, task.name, request.id)


@signals.task_prerun.connect(dispatch_uid="girder_worker.delivery.admission")
def _on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    if request is None:
        return
    lease = request.__dict__.pop(LEASE_KEY, None)  # the task's code does not see it
    headers = request.__dict__.get("headers")
    if isinstance(headers, dict):  # Celery's custom headers of the run, which self.retry() sends on
        headers.pop(LEASE_KEY, None)
    if not isinstance(lease, dict):
        return
    refusal = admit_run(task, request, lease)
    if refusal is not None:
        request.__dict__[REFUSAL_ATTR] = refusal

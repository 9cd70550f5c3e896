"""The contract between the task class and the worker that runs it.

:class:`~girder_worker_utils.Task` (this package) and a worker that runs it
(girder-worker core) meet at a few names, listed here so that neither side
reaches into the other's private modules. A plugin author does not need this
module: a task sees all of it as ``self.cancelled``, ``self.job_manager`` and
the other attributes of :class:`~girder_worker_utils.Task`.

What the worker does with them:

- it attaches, on a run's Celery request (``request.__dict__[name] = ...``), the
  run's :class:`~girder_worker_utils.CancelFlag` under :data:`CANCEL_ATTR`, its
  :class:`~girder_worker_utils.JobManager` under :data:`JOB_MANAGER_ATTR` and its
  Girder client under :data:`GIRDER_CLIENT_ATTR`;
- it may refuse a run before its body begins, by putting the exception the run
  ends with under :data:`REFUSAL_ATTR` (from a ``task_prerun`` receiver): a
  ``celery.exceptions.Ignore`` for a duplicate delivery, say; the task raises it
  at once, inside Celery's tracer, which records it as for any exception a task raises;
- it reads the Girder job's API root and token from the message headers named
  in :data:`GIRDER_HEADERS`, and takes the options in :data:`GIRDER_OPTIONS` out
  of a message before it is published;
- it runs a cancel callback through :func:`run_cancel_callback`, finds a run's
  result hooks with :func:`result_hooks`, and records a run's arguments in its
  Girder job with :func:`walk` and :func:`model_repr`;
- it knows a cancelled run by the :class:`RunRevoked` it ends with::

    from girder_worker_utils.worker import CANCEL_ATTR, RunRevoked

    flag = request.__dict__.get(CANCEL_ATTR)
    if isinstance(exc, RunRevoked):
        announce_revoked(request, exc.reason, exc.terminated)
"""

from __future__ import annotations

from . import _job, _task
from ._cancel import run_cancel_callback
from ._exceptions import RunRevoked
from ._transforms_run import model_repr, result_hooks, walk

__all__ = [
    "CANCEL_ATTR",
    "GIRDER_CLIENT_ATTR",
    "GIRDER_HEADERS",
    "GIRDER_OPTIONS",
    "JOB_MANAGER_ATTR",
    "REFUSAL_ATTR",
    "RunRevoked",
    "model_repr",
    "result_hooks",
    "run_cancel_callback",
    "walk",
]


# The same objects as in the private modules, named here with their documentation.

#: The request attribute where the worker keeps a run's :class:`~girder_worker_utils.CancelFlag`.
CANCEL_ATTR = _task.CANCEL_ATTR
#: The request attribute where the worker puts the exception a run must end with before its body
#: begins (see above); a run without it runs.
REFUSAL_ATTR = _task.REFUSAL_ATTR
#: The request attribute where the worker keeps a run's :class:`~girder_worker_utils.JobManager`.
JOB_MANAGER_ATTR = _job.JOB_MANAGER_ATTR
#: The request attribute where the worker keeps a run's Girder client (made on first use).
GIRDER_CLIENT_ATTR = _job.GIRDER_CLIENT_ATTR
#: Options of ``delay``/``apply_async`` that travel as message headers to the worker.
GIRDER_HEADERS = _job.GIRDER_HEADERS
#: Options of ``delay``/``apply_async`` that say how to create the Girder job; never sent.
GIRDER_OPTIONS = _job.GIRDER_OPTIONS

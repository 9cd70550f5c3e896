"""The Celery task base that girder-worker tasks share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import celery
from celery import signals
from celery._state import _task_stack
from celery.exceptions import Ignore
from celery.worker import state as _worker_state

from ._cancel import CancelFlag
from ._exceptions import TaskCancelled, TaskTerminated

__all__ = ["Task"]

#: The request attribute where the worker keeps a run's :class:`CancelFlag`.
CANCEL_ATTR = "girder_worker_cancel"
_STARTED_ATTR = "girder_worker_started"


class Task(celery.Task):  # type: ignore[misc]
    """A Celery task that can see whether it was cancelled.

    The girder-worker app uses it as its default task class, so every
    ``@app.task`` gets it; a plugin that depends only on ``girder-worker-utils``
    gets it through :func:`girder_worker_utils.task`.

    A task bound with ``bind=True`` polls :attr:`cancelled` and stops by returning,
    or calls :meth:`check_cancelled` to stop with :class:`TaskCancelled`::

        @app.task(bind=True)
        def count(task, limit):
            n = 0
            while not task.cancelled and n < limit:
                n += 1
            return n

    Either way a cancelled run ends in Celery state ``REVOKED``, never
    ``SUCCESS`` or ``FAILURE``.

    A task called directly from inside a running task runs as a plain function
    call in the caller's context: it sees the caller's request, and so the
    caller's cancellation. Celery would push a new request context per call, which
    makes a recursive task hundreds of times slower than plain Python.
    """

    #: Seconds a cancelled run may take to stop before the worker terminates it;
    #: ``None`` takes the worker's default (``GIRDER_WORKER_CANCEL_GRACE_PERIOD``).
    cancel_grace_period: float | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _task_stack.top is None:
            return super().__call__(*args, **kwargs)
        request = self.request_stack.top
        if request is None or _STARTED_ATTR in request.__dict__:
            return self.run(*args, **kwargs)
        # The worker's tracer (or apply()) is running this task: the top-level call.
        request.__dict__[_STARTED_ATTR] = True
        try:
            result = self.run(*args, **kwargs)
        except (TaskCancelled, TaskTerminated) as exc:
            self._end_cancelled(request, exc.reason, terminated=isinstance(exc, TaskTerminated))
        if self.cancelled:
            self._end_cancelled(request, _reason(request), terminated=False)
        return result

    def _end_cancelled(self, request: Any, reason: str, terminated: bool) -> None:
        flag = request.__dict__.get(CANCEL_ATTR)
        if flag is not None:
            flag.run_pending_callbacks()
        self.backend.mark_as_revoked(request.id, reason, request=request)
        signals.task_revoked.send(sender=self, request=request, terminated=terminated, signum=None, expired=False)
        raise Ignore(reason)

    @property
    def cancelled(self) -> bool:
        """Whether this run was cancelled: a read of local state, no network I/O.

        Once True it stays True for the rest of the run. Outside a running task it
        is False.
        """
        request = self.request_stack.top
        if request is None:
            return False
        flag = request.__dict__.get(CANCEL_ATTR)
        if flag is not None:
            return bool(flag.is_set())
        return request.id is not None and request.id in _worker_state.revoked

    @property
    def canceled(self) -> bool:
        """Alias of :attr:`cancelled`, the spelling the original girder-worker used."""
        return self.cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if this run was cancelled."""
        if self.cancelled:
            raise TaskCancelled(_reason(self.request))

    check_canceled = check_cancelled

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once as soon as the worker sees this run cancelled.

        Use it to stop what the task started, for example a subprocess::

            proc = subprocess.Popen(["simulate", path])
            self.on_cancel(proc.terminate)
            proc.wait()

        It runs in a worker thread, not the task's, so it should be quick. If the
        run is already cancelled it is called at once.
        """
        request = self.request_stack.top
        flag = request.__dict__.get(CANCEL_ATTR) if request is not None else None
        if flag is None:
            flag = CancelFlag()
            if request is not None:
                request.__dict__[CANCEL_ATTR] = flag
        flag.add_callback(callback)


def _reason(request: Any) -> str:
    flag = request.__dict__.get(CANCEL_ATTR) if request is not None else None
    return getattr(flag, "reason", None) or "cancelled"

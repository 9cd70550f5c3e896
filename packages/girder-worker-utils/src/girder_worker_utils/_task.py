"""The Celery task base that girder-worker tasks share."""

from __future__ import annotations

from typing import Any

import celery
from celery._state import _task_stack
from celery.worker import state as _worker_state

from ._exceptions import TaskCancelled

__all__ = ["Task"]

#: The request attribute where the worker keeps a run's cancellation flag.
CANCEL_ATTR = "girder_worker_cancel"


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

    A task called directly from inside a running task runs as a plain function
    call in the caller's context: it sees the caller's request, and so the
    caller's cancellation. Celery would push a new request context per call, which
    makes a recursive task hundreds of times slower than plain Python.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _task_stack.top is not None:
            return self.run(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    @property
    def cancelled(self) -> bool:
        """Whether this run was cancelled, read from local state with no network I/O.

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
            raise TaskCancelled()

"""The Celery task base that girder-worker tasks share."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import celery
from celery import signals
from celery.backends.base import DisabledBackend
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from ._cancel import CancelFlag
from ._celery_internals import is_revoked, running_task
from ._exceptions import RunRevoked, TaskCancelled, TaskTerminated
from ._job import GIRDER_CLIENT_ATTR, GIRDER_OPTIONS, JOB_MANAGER_ATTR, JobManager, move_girder_options
from ._redact import redact_exception, run_secrets
from ._transforms_run import TransformRun, _plain, result_hooks

__all__ = ["Task"]


_log = logging.getLogger("girder_worker.task")


class _Current(threading.local):
    """The cancel flag of the run this thread is executing, if any."""

    flag: Any = None


_current = _Current()

#: The request attribute where the worker keeps a run's :class:`CancelFlag`.
CANCEL_ATTR = "girder_worker_cancel"
#: The request attribute where the worker puts the exception a run ends with before its body begins.
REFUSAL_ATTR = "girder_worker_refusal"
_STARTED_ATTR = "girder_worker_started"
_PROGRESS_ATTR = "girder_worker_progress"
#: The Celery state a run's progress is stored under; its ``info`` is the progress.
PROGRESS_STATE = "PROGRESS"


class _Progress:
    """A run's progress on its way to the result backend: when it was last written, what waits."""

    __slots__ = ("last", "off", "pending")

    def __init__(self) -> None:
        self.last = float("-inf")
        self.pending: dict[str, Any] | None = None
        self.off = False  # nowhere to write, or writing failed


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
    ``SUCCESS`` or ``FAILURE``. A run stopped by its soft time limit sees
    :attr:`cancelled` the same way, with :attr:`cancel_reason` saying which limit,
    and ends ``FAILURE`` with Celery's ``SoftTimeLimitExceeded`` (or
    ``TimeLimitExceeded`` at its hard limit) however it stops.

    A task called directly from inside a running task runs as a plain function
    call in the caller's context: it sees the caller's request, and so the
    caller's cancellation. Celery would push a new request context per call, which
    makes a recursive task hundreds of times slower than plain Python.
    """

    #: Seconds a cancelled run may take to stop before the worker terminates it;
    #: ``None`` takes the worker's default (``GIRDER_WORKER_CANCEL_GRACE_PERIOD``).
    cancel_grace_period: float | None = None

    #: What happens to a run whose worker is lost (killed, out of memory) while it
    #: runs: ``"at-least-once"`` delivers it again, up to :attr:`max_deliveries`
    #: times in all, then fails it; ``"at-most-once"`` fails it at once. ``None``
    #: takes the worker's default (``GIRDER_WORKER_DELIVERY``).
    delivery: str | None = None

    #: Runs an at-least-once task may start before it is failed as lost; ``None``
    #: takes the worker's default (``GIRDER_WORKER_MAX_DELIVERIES``).
    max_deliveries: int | None = None

    #: Least seconds between two writes of a run's progress to the result backend
    #: (see :meth:`progress`); the latest value is always written before the run ends.
    progress_interval: float = 0.5

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if running_task() is None:
            return super().__call__(*args, **kwargs)
        request = self.request_stack.top
        if request is None or _STARTED_ATTR in request.__dict__:
            return self.run(*args, **kwargs)
        # The worker's tracer (or apply()) is running this task: the top-level call.
        request.__dict__[_STARTED_ATTR] = True
        refusal = request.__dict__.get(REFUSAL_ATTR)
        if refusal is not None:  # the worker's admission refused the run: its body never begins
            raise refusal
        outer, _current.flag = _current.flag, request.__dict__.get(CANCEL_ATTR)
        try:
            if self.cancelled:  # before it began: its Girder job was found cancelled, say
                self._end_cancelled(request, _reason(request), terminated=False)
            try:
                hooks = result_hooks(request)
                if hooks is None and all(map(_plain, args)) and all(map(_plain, kwargs.values())):
                    result = self.run(*args, **kwargs)
                else:
                    result = self._run_with_transforms(TransformRun(hooks), args, kwargs)
            except (TaskCancelled, TaskTerminated) as exc:
                self._end_cancelled(request, exc.reason, terminated=isinstance(exc, TaskTerminated))
            except Exception as exc:
                # Celery stores the exception and its traceback where result readers see them.
                redact_exception(exc, run_secrets(request))
                if self.cancelled:  # what a cancelled task raises on its way out is not a failure
                    _log.warning(
                        "%s[%s] raised after it was cancelled (%s):\n%s",
                        self.name,
                        request.id,
                        _reason(request),
                        traceback.format_exc(),
                    )
                    self._end_cancelled(request, _reason(request), terminated=False)
                raise
            if self.cancelled:
                self._end_cancelled(request, _reason(request), terminated=False)
            return result
        finally:
            self._flush_progress(request)
            _current.flag = outer

    def _run_with_transforms(self, transforms: TransformRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The run with its arguments transformed and its result through its result hooks."""
        try:
            args, kwargs = transforms.arguments(args, kwargs)
            result = self.run(*args, **kwargs)
            if self.cancelled:  # a cancelled run's result is not delivered anywhere
                return result
            return transforms.result(result)
        except BaseException:
            transforms.failed()
            raise
        finally:
            transforms.cleanup()

    def _end_cancelled(self, request: Any, reason: str, terminated: bool) -> None:
        self._flush_progress(request)  # before the final state, never over it
        flag = request.__dict__.get(CANCEL_ATTR)
        if flag is not None:
            flag.run_pending_callbacks()
        limit = getattr(flag, "time_limit", None)
        if limit is not None:  # not a user's cancel: a failure, caused by what is in flight
            error = TimeLimitExceeded if limit == "hard" else SoftTimeLimitExceeded
            raise error(_reason(request)) from sys.exc_info()[1]
        self.backend.mark_as_revoked(request.id, reason, request=request)
        signals.task_revoked.send(sender=self, request=request, terminated=terminated, signum=None, expired=False)
        raise RunRevoked(reason, terminated)

    @property
    def cancelled(self) -> bool:
        """Whether this run was cancelled: a read of local state, no network I/O.

        Once True it stays True for the rest of the run. Outside a running task it
        is False.
        """
        flag = _current.flag
        if flag is not None:  # the hot path: a thread-local read and the flag's
            return bool(flag.is_set())
        request = self.request_stack.top
        if request is None:
            return False
        flag = request.__dict__.get(CANCEL_ATTR)
        if flag is not None:
            return bool(flag.is_set())
        return request.id is not None and is_revoked(request.id)

    @property
    def cancel_reason(self) -> str | None:
        """Why this run was cancelled, or None while it is not.

        ``"cancelled"`` (or the reason its canceller gave) for a user's cancel, or
        which time limit passed, such as ``"soft time limit (2 s) exceeded"``.
        """
        if not self.cancelled:
            return None
        return _reason(self.request)

    @property
    def canceled(self) -> bool:
        """Alias of :attr:`cancelled`, the spelling the original girder-worker used."""
        return self.cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if this run was cancelled."""
        if self.cancelled:
            raise TaskCancelled(_reason(self.request))

    check_canceled = check_cancelled

    # -- Girder ---------------------------------------------------------------

    @property
    def job_manager(self) -> JobManager | None:
        """The Girder job of this run, to report log and progress to; None without one.

        A run has a job when its message names one (Girder scheduled it, or it was
        published with a Girder URL and token). See :class:`JobManager`.
        """
        request = self.request_stack.top
        if request is None:
            return None
        manager: JobManager | None = request.__dict__.get(JOB_MANAGER_ATTR)
        return manager

    def progress(self, current: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far this run got: to its Girder job, and to its result for clients.

        It never waits for Girder, so call it as often as is convenient; the worker
        sends the latest values to the job at most twice a second. A client sees the
        same values in the task's result, as Celery state ``PROGRESS`` with ``info``
        ``{"current": ..., "total": ..., "message": ...}``, written at most once per
        :attr:`progress_interval` (0.5 s), the latest value always before the run's
        final state::

            for i, path in enumerate(paths):
                self.progress(i, total=len(paths), message=path)

        Outside a worker run (a direct call) it does nothing.
        """
        manager = self.job_manager
        if manager is not None:
            manager.updateProgress(total=total, current=current, message=message)
        request = self.request_stack.top
        if request is None or request.id is None or request.called_directly:
            return
        state = request.__dict__.get(_PROGRESS_ATTR)
        if state is None:
            state = request.__dict__[_PROGRESS_ATTR] = _Progress()
            state.off = self._ignores_result(request)
        if state.off:
            return
        state.pending = {"current": current, "total": total, "message": message}
        if time.monotonic() - state.last >= self.progress_interval:
            self._write_progress(request, state)

    def _ignores_result(self, request: Any) -> bool:
        """Whether this run's states go nowhere: ignored, eager and not stored, or no backend."""
        ignore = getattr(request, "ignore_result", None)
        if self.ignore_result if ignore is None else ignore:
            return True
        if getattr(request, "is_eager", False) and not self.app.conf.task_store_eager_result:
            return True
        return isinstance(self.backend, DisabledBackend)

    def _write_progress(self, request: Any, state: _Progress) -> None:
        meta, state.pending = state.pending, None
        state.last = time.monotonic()
        try:
            self.update_state(task_id=request.id, state=PROGRESS_STATE, meta=meta)
        except Exception as exc:  # the Girder job still gets it; a result reader does not
            state.off = True
            _log.warning(
                "%s[%s]: its progress cannot be stored in the result backend (%s); clients will not see it",
                self.name,
                request.id,
                exc,
            )

    def _flush_progress(self, request: Any) -> None:
        state = request.__dict__.get(_PROGRESS_ATTR)
        if state is not None and state.pending is not None and not state.off:
            self._write_progress(request, state)

    @property
    def girder_client(self) -> Any:
        """A ``girder_client.GirderClient`` for this run's Girder, logged in with its token.

        It exists when the message carries ``girder_api_url`` (or Girder's ``apiUrl``)
        and ``girder_client_token``; otherwise it is None. It is made on first use.
        """
        request = self.request_stack.top
        holder = request.__dict__.get(GIRDER_CLIENT_ATTR) if request is not None else None
        return holder.get() if holder is not None else None

    def apply_async(
        self, args: Any = None, kwargs: Any = None, task_id: str | None = None, *rest: Any, **options: Any
    ) -> Any:
        """Celery's ``apply_async``, which also takes the original girder-worker's options.

        ``girder_api_url`` and ``girder_client_token`` (in ``kwargs`` or as options) go
        in the message's headers; ``girder_job_title``, ``girder_job_type``,
        ``girder_job_public``, ``girder_job_handler``, ``girder_job_other_fields`` and
        ``girder_job_disable`` say how to create the Girder job when the message is
        published. ``delay(..., girder_job_title="x")`` works too.
        """
        kwargs = move_girder_options(kwargs, options)
        defaults = {k: getattr(self, f"_{k}") for k in GIRDER_OPTIONS if hasattr(self, f"_{k}")}
        if defaults:  # set by the original's @girder_job decorator
            options["headers"] = {**defaults, **(options.get("headers") or {})}
        return super().apply_async(args, kwargs, task_id, *rest, **options)

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
                if _STARTED_ATTR in request.__dict__:
                    _current.flag = flag
        flag.add_callback(callback)


def _reason(request: Any) -> str:
    flag = request.__dict__.get(CANCEL_ATTR) if request is not None else None
    return getattr(flag, "reason", None) or "cancelled"

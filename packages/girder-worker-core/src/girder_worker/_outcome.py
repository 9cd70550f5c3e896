"""How a task run ended, decided in one place.

Every way a run can end (it returned, it raised, it was cancelled and stopped, it
was terminated after its grace period, a time limit passed, it expired before it
started, its worker was lost, its message was refused, no worker has its task)
is one :class:`Ending`. :func:`of_failure` and the other constructors here turn
what the worker saw into an :class:`Outcome`: the Celery state the result
backend holds, the Girder job's final status, the task event monitors receive,
and the line the job's log ends with. The Girder step writes what it says
(:func:`girder_worker.girder._signals.end_job`, the one writer of a job's final
status); the rules live only here, so the job, the result and the event of a run
cannot disagree.

The Celery state itself is stored by Celery's tracer from what the run raised:
girder-worker's task class raises what makes it right (``RunRevoked`` after
storing ``REVOKED`` for a cancelled run, ``TimeLimitExceeded`` for a run a limit
stopped); for a lost run, whose tracer is gone, the delivery step stores
``FAILURE`` with :class:`~girder_worker_utils.TaskLost` through :func:`store_state`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from celery import states
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from girder_worker_utils import JobStatus, TaskLost, TaskTerminated

__all__ = [
    "Ending",
    "Outcome",
    "line_of",
    "of_failure",
    "of_lost",
    "of_refused",
    "of_revoked",
    "of_success",
    "of_unknown_task",
    "store_state",
    "time_limit_line",
]


class Ending(enum.Enum):
    """The ways a run ends."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: It raised after it was cancelled: a failure to Celery, a cancel to Girder.
    FAILED_CANCELLED = "failed after its cancel"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    EXPIRED = "expired"
    TIME_LIMIT = "time limit"
    LOST = "lost"
    REFUSED = "refused"
    UNKNOWN_TASK = "unknown task"


_STATE: dict[Ending, tuple[str, JobStatus, str]] = {
    Ending.SUCCEEDED: (states.SUCCESS, JobStatus.SUCCESS, "task-succeeded"),
    Ending.FAILED: (states.FAILURE, JobStatus.ERROR, "task-failed"),
    Ending.FAILED_CANCELLED: (states.FAILURE, JobStatus.CANCELED, "task-failed"),
    Ending.CANCELLED: (states.REVOKED, JobStatus.CANCELED, "task-revoked"),
    Ending.TERMINATED: (states.REVOKED, JobStatus.CANCELED, "task-revoked"),
    Ending.EXPIRED: (states.REVOKED, JobStatus.CANCELED, "task-revoked"),
    Ending.TIME_LIMIT: (states.FAILURE, JobStatus.ERROR, "task-failed"),
    Ending.LOST: (states.FAILURE, JobStatus.ERROR, "task-failed"),
    Ending.REFUSED: (states.FAILURE, JobStatus.ERROR, "task-failed"),
    Ending.UNKNOWN_TASK: (states.FAILURE, JobStatus.ERROR, "task-failed"),
}


@dataclass(frozen=True)
class Outcome:
    """A run's ending and what each party is told of it."""

    ending: Ending
    #: What the job's log ends with (a traceback, or one ``girder-worker: ...`` line); may be empty.
    log: str = ""

    @property
    def state(self) -> str:
        """The Celery state the result backend holds."""
        return _STATE[self.ending][0]

    @property
    def job_status(self) -> JobStatus:
        """The Girder job's final status."""
        return _STATE[self.ending][1]

    @property
    def event(self) -> str:
        """The Celery task event that announces it."""
        return _STATE[self.ending][2]


def line_of(text: str) -> str:
    """``text`` as lines of a job's log: ending with a newline, unless it is empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def store_state(backend: Any, task_id: str, outcome: Outcome, exception: BaseException) -> None:
    """Store ``outcome``'s Celery state as ``task_id``'s result in ``backend``, for a run whose
    tracer cannot (its worker was lost): ``FAILURE`` with ``exception``, as Celery stores a failure.

    The other states are stored where the run ends (the tracer, the task class's cancel).
    """
    if outcome.state != states.FAILURE:
        raise ValueError(f"a {outcome.ending.value} run's state ({outcome.state}) is stored where it ends")
    backend.mark_as_failure(task_id, exception)


def of_success() -> Outcome:
    """The run returned."""
    return Outcome(Ending.SUCCEEDED)


def time_limit_line(exception: BaseException) -> str | None:
    """The job log line of a run that a time limit ended, or None for any other failure."""
    if not isinstance(exception, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        return None
    how = "the task was terminated" if isinstance(exception.__cause__, TaskTerminated) else "the task stopped"
    reason = exception.args[0] if exception.args else type(exception).__name__  # billiard's str() adds the type
    return f"girder-worker: {reason}; {how}"


def of_failure(exception: object, traceback: str | None = None, *, cancelled: bool = False) -> Outcome:
    """The run raised ``exception`` (``traceback`` is its text, when the process that ran it still has it).

    ``cancelled``: the run had been cancelled before it raised.
    """
    if isinstance(exception, BaseException):
        limit = time_limit_line(exception)
        if limit is not None:  # which limit, not a traceback of the worker's machinery; a failure, not a cancel
            return Outcome(Ending.TIME_LIMIT, line_of(limit))
        if isinstance(exception, TaskLost):  # no traceback: the process that had one is gone
            return of_lost(exception.reason)
    text = line_of(traceback or f"{type(exception).__name__}: {exception}")
    if cancelled:
        return Outcome(Ending.FAILED_CANCELLED, text + "girder-worker: the task raised after it was cancelled\n")
    return Outcome(Ending.FAILED, text)


def of_revoked(*, terminated: bool = False, expired: bool = False) -> Outcome:
    """The run was cancelled: it stopped, was terminated after its grace period, or expired unstarted."""
    if terminated:
        return Outcome(
            Ending.TERMINATED,
            "girder-worker: the task did not stop within its cancel grace period and was terminated\n",
        )
    if expired:
        return Outcome(Ending.EXPIRED, "girder-worker: the task expired before it could run\n")
    return Outcome(Ending.CANCELLED)


def of_lost(reason: str) -> Outcome:
    """The run's worker (or pool process) was lost and the delivery policy does not run it again."""
    return Outcome(Ending.LOST, f"girder-worker: {reason}; the job failed\n")


def of_refused(text: str) -> Outcome:
    """The worker refused the run's message (``text`` names what, where and the fix)."""
    return Outcome(Ending.REFUSED, line_of(text))


def of_unknown_task(hostname: str, name: str) -> Outcome:
    """No task of that name is registered on the worker that received it."""
    return Outcome(
        Ending.UNKNOWN_TASK,
        f"girder-worker: {hostname} has no task named '{name}'; is the plugin that has it installed?\n",
    )

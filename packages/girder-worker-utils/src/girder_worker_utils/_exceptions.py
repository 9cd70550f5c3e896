"""Exceptions shared by the worker and the tasks it runs."""

from __future__ import annotations

from celery.exceptions import Ignore

__all__ = ["RunRevoked", "TaskCancelled", "TaskLost", "TaskTerminated"]


class TaskCancelled(Exception):
    """Raised by a task to stop because it was cancelled.

    A task that raises it ends as ``REVOKED`` in Celery and ``CANCELED`` in
    Girder, not as a failure::

        @task(bind=True)
        def long_analysis(self, items):
            for item in items:
                self.check_cancelled()  # raises TaskCancelled once cancelled
                process(item)
    """

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class TaskTerminated(BaseException):
    """Raised into a task that did not stop within its cancel grace period.

    It derives from :class:`BaseException`, like :class:`KeyboardInterrupt`, so
    that ``except Exception`` in task code does not swallow it. The task ends as
    ``REVOKED``.
    """

    def __init__(self, reason: str = "terminated after its cancel grace period") -> None:
        super().__init__(reason)
        self.reason = reason


class TaskLost(Exception):
    """The failure of a task whose worker was lost while it ran, and that will not run again.

    A task is lost when its pool process or its whole worker dies under it (killed,
    out of memory, the machine rebooted). Under its delivery policy it is then
    either delivered again or failed with this exception, whose message says why::

        worker lost 2 times (at-least-once, max_deliveries 2)
    """

    def __init__(self, reason: str = "worker lost") -> None:
        super().__init__(reason)
        self.reason = reason


class RunRevoked(Ignore):  # type: ignore[misc]
    """How a cancelled run ends: its state is already ``REVOKED``, and this says why.

    It is Celery's :class:`~celery.exceptions.Ignore` (the worker keeps the state the
    run stored), carrying the cancel's reason and whether the run was terminated,
    so the worker can announce the run revoked (Celery's ``task-revoked`` event).
    Task code never raises it; it raises :class:`TaskCancelled`.
    """

    def __init__(self, reason: str = "cancelled", terminated: bool = False) -> None:
        super().__init__(reason, terminated)
        self.reason = reason
        self.terminated = terminated

    def __str__(self) -> str:
        return self.reason

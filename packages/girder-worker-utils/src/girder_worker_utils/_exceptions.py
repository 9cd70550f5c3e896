"""Exceptions shared by the worker and the tasks it runs."""

from __future__ import annotations

__all__ = ["TaskCancelled", "TaskTerminated"]


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

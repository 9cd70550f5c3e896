"""A run's statuses and progress, as its Girder job shows them.

The worker plugin's statuses FETCHING_INPUT, CONVERTING_INPUT, CONVERTING_OUTPUT
and PUSHING_OUTPUT are reported only where Girder's transition table allows
them *and* the job can still end SUCCESS from there: CONVERTING_INPUT leads only
to ERROR, so a run converting its inputs stays in FETCHING_INPUT or RUNNING
and says so in the progress message instead.
"""

from __future__ import annotations

from typing import Any

from girder_worker_utils import JobStatus

__all__ = ["JobReport"]

#: Both handlers that run analyses (worker_handler, celery_handler) share these rules.
_HANDLER = "worker_handler"


class JobReport:
    """Reports one run's stage to its job manager (if it has one) as status and progress."""

    def __init__(self, job_manager: Any, total: int) -> None:
        self.manager = job_manager
        self.status = JobStatus.RUNNING
        self.total = max(total, 1)
        self.done = 0

    def enter(self, status: JobStatus) -> None:
        """Move to ``status`` if Girder allows it and SUCCESS stays reachable."""
        if self.manager is None or status == self.status:
            return
        if not JobStatus.can_transition(self.status, status, _HANDLER):
            return
        if status != JobStatus.RUNNING and JobStatus.transition_path(status, JobStatus.SUCCESS, _HANDLER) is None:
            return
        self.manager.updateStatus(status)
        self.status = status

    def step(self, message: str) -> None:
        """One more stage begins: progress ``done/total`` with ``message``."""
        if self.manager is not None:
            self.manager.updateProgress(total=self.total, current=min(self.done, self.total), message=message)
        self.done += 1

    def note(self, message: str) -> None:
        """Say what the current stage is doing, without moving the progress."""
        if self.manager is not None:
            self.manager.updateProgress(message=message)

    def finish(self, message: str = "done") -> None:
        if self.manager is not None:
            self.manager.updateProgress(total=self.total, current=self.total, message=message)

    def failed(self) -> None:
        """The run is ending early: back to RUNNING where Girder allows it, so that
        both ERROR and CANCELED can follow."""
        self.enter(JobStatus.RUNNING)

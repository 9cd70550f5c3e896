"""The original's ``girder_worker.task``: the task class and the result with its job.

:class:`Task` is :class:`girder_worker_utils.Task`, the class every task of the
girder-worker app has; slicer_cli_web and the docker tasks subclass it.
:class:`GirderAsyncResult` is the class of the results the app gives back: its
:attr:`~GirderAsyncResult.job` is the Girder job made for the task when it was
published.
"""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult

from girder_worker_utils import Task

__all__ = ["GirderAsyncResult", "Task"]


class GirderAsyncResult(AsyncResult):  # type: ignore[misc]
    """A Celery result whose :attr:`job` is its task's Girder job."""

    _job: dict[str, Any] | None = None

    @property
    def job(self) -> dict[str, Any] | None:
        """The Girder job document made for this task when it was published, or None.

        Inside a Girder server it is read from Girder's database (the job whose
        ``celeryTaskId`` is this task's id); elsewhere it is the job this process
        created when it published the task (with ``girder_api_url`` and
        ``girder_client_token``), and None for a task this process did not publish.
        """
        if self._job is None:
            from .context import get_context

            self._job = get_context().get_async_result_job_property(self)
        return self._job

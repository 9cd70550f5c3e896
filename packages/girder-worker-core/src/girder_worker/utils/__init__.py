"""The original girder-worker's ``girder_worker.utils``, for code written for it.

large_image's tasks import :func:`girder_job` from here and slicer_cli_web
imports ``_walk_obj``; the rest of the original's public names are here too. New
code imports from :mod:`girder_worker_utils` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from girder_worker_utils import JobManager, JobStatus, Task, TaskCancelled
from girder_worker_utils.worker import model_repr as _maybe_model_repr
from girder_worker_utils.worker import walk as _walk_obj

__all__ = [
    "BUILTIN_CELERY_TASKS",
    "JobManager",
    "JobSpecNotFound",
    "JobStatus",
    "StateTransitionException",
    "Task",
    "TaskCancelled",
    "_maybe_model_repr",
    "_walk_obj",
    "girder_job",
    "is_builtin_celery_task",
    "is_revoked",
]

#: Celery's own tasks, which the original never gave a Girder job.
BUILTIN_CELERY_TASKS = [
    "celery.accumulate",
    "celery.backend_cleanup",
    "celery.chain",
    "celery.chord",
    "celery.chord_unlock",
    "celery.chunks",
    "celery.group",
    "celery.map",
    "celery.starmap",
]

_T = TypeVar("_T")


class JobSpecNotFound(Exception):
    """A message that should name a Girder job names none."""


class StateTransitionException(Exception):
    """Girder refused a job status change (HTTP 400 on the status field)."""


def is_builtin_celery_task(task: str) -> bool:
    """Whether ``task`` names one of Celery's own tasks."""
    return task in BUILTIN_CELERY_TASKS


def is_revoked(task: Any) -> bool:
    """Whether ``task``'s current run was cancelled: ``task.cancelled``, a local read."""
    return bool(getattr(task, "cancelled", False))


def girder_job(
    title: str | None = None,
    type: str = "celery",
    public: bool = False,
    handler: str = "celery_handler",
    otherFields: dict[str, Any] | None = None,  # noqa: N803
) -> Callable[[_T], _T]:
    """Say how the Girder job of a task is made when the task is published.

    Apply it outside ``@app.task``, as large_image does::

        @girder_job(title="Create a pyramidal tiff using vips", type="large_image_tiff")
        @app.task(bind=True)
        def create_tiff(self, inputFile, ...):
            ...

    The options of ``delay``/``apply_async`` (``girder_job_title=...``) win over these.
    """

    def decorate(task: _T) -> _T:
        task._girder_job_title = title  # type: ignore[attr-defined]
        task._girder_job_type = type  # type: ignore[attr-defined]
        task._girder_job_public = public  # type: ignore[attr-defined]
        task._girder_job_handler = handler  # type: ignore[attr-defined]
        task._girder_job_other_fields = dict(otherFields or {})  # type: ignore[attr-defined]
        return task

    return decorate

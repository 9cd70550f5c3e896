"""Publishing inside a Girder server: jobs are created with Girder's Job model."""

from __future__ import annotations

from typing import Any

__all__ = ["get_async_result_job_property"]


def get_async_result_job_property(async_result: Any) -> dict[str, Any] | None:
    """The Girder job whose ``celeryTaskId`` is ``async_result``'s task id."""
    from .._girder_publish import job_of

    job = job_of(async_result.id)
    if job is not None:
        return job
    from girder_jobs.models.job import Job

    found: dict[str, Any] | None = Job().findOne({"celeryTaskId": async_result.id})
    return found

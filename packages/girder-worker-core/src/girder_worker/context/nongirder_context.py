"""Publishing outside a Girder server: jobs are created through Girder's REST API."""

from __future__ import annotations

from typing import Any

__all__ = ["get_async_result_job_property"]


def get_async_result_job_property(async_result: Any) -> dict[str, Any] | None:
    """The Girder job this process created when it published ``async_result``'s task."""
    from ..girder._publish import job_of

    return job_of(async_result.id)

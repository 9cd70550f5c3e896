"""Girder's job status values."""

from __future__ import annotations

import enum

__all__ = ["JobStatus"]


class JobStatus(enum.IntEnum):
    """The status of a Girder job, as girder-jobs and its worker plugin number them.

    ``JobStatus.RUNNING == 2``, so a value can go straight into a REST call.
    """

    INACTIVE = 0
    QUEUED = 1
    RUNNING = 2
    SUCCESS = 3
    ERROR = 4
    CANCELED = 5
    FETCHING_INPUT = 820
    CONVERTING_INPUT = 821
    CONVERTING_OUTPUT = 822
    PUSHING_OUTPUT = 823
    CANCELING = 824

    @property
    def is_final(self) -> bool:
        """Whether a job in this status has ended and will not change again."""
        return self in _FINAL


_FINAL = frozenset({JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED})

"""Girder's job status values and the transitions Girder allows between them."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping

__all__ = ["TRANSITIONS", "JobStatus"]


class JobStatus(enum.IntEnum):
    """The status of a Girder job, as girder-jobs and its worker plugin number them.

    ``JobStatus.RUNNING == 2``, so a value can go straight into a REST call.

    Girder checks every status change against a table that depends on the job's
    ``handler``, and answers 400 to one the table does not allow. The helpers
    below read the same tables, so a task can ask before it asks Girder::

        JobStatus.can_transition(JobStatus.QUEUED, JobStatus.SUCCESS, "worker_handler")  # False
        JobStatus.transition_path(JobStatus.QUEUED, JobStatus.SUCCESS, "worker_handler")
        # [JobStatus.RUNNING, JobStatus.SUCCESS]
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

    @classmethod
    def allowed_previous(cls, target: int, handler: str | None = None) -> frozenset[JobStatus]:
        """The statuses from which Girder lets a job of ``handler`` move to ``target``.

        ``handler`` is the job's ``handler`` field: ``"worker_handler"``,
        ``"celery_handler"``, or anything else (including ``None``) for the table of
        girder-jobs itself. An empty set means Girder rejects every move to ``target``.
        """
        return _table(handler).get(cls(target), frozenset())

    @classmethod
    def can_transition(cls, current: int, target: int, handler: str | None = None) -> bool:
        """Whether Girder accepts setting a ``current`` job of ``handler`` to ``target``.

        Setting a job to the status it already has is always accepted (Girder
        treats it as no change).
        """
        return current == target or cls(current) in cls.allowed_previous(target, handler)

    @classmethod
    def transition_path(cls, current: int, target: int, handler: str | None = None) -> list[JobStatus] | None:
        """The shortest list of statuses that takes a job from ``current`` to ``target``.

        The list ends with ``target`` and leaves out ``current``; it is empty when
        they are equal, and ``None`` when no sequence of allowed moves gets there
        (for example out of a final status).
        """
        start, goal = cls(current), cls(target)
        if start == goal:
            return []
        table = _table(handler)
        came_from: dict[JobStatus, JobStatus] = {start: start}
        todo = deque([start])
        while todo:
            here = todo.popleft()
            for nxt, previous in table.items():
                if here in previous and nxt not in came_from:
                    came_from[nxt] = here
                    if nxt == goal:
                        path = [nxt]
                        while came_from[path[-1]] != start:
                            path.append(came_from[path[-1]])
                        return path[::-1]
                    todo.append(nxt)
        return None


_FINAL = frozenset({JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED})

S = JobStatus
_GIRDER_JOBS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.INACTIVE}),
    S.RUNNING: frozenset({S.QUEUED, S.INACTIVE}),
    S.SUCCESS: frozenset({S.RUNNING}),
    S.ERROR: frozenset({S.QUEUED, S.RUNNING}),
    S.CANCELED: frozenset({S.INACTIVE, S.QUEUED, S.RUNNING}),
}
_WORKER_PLUGIN_COMMON: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.INACTIVE}),
    S.FETCHING_INPUT: frozenset({S.RUNNING}),
    S.CONVERTING_INPUT: frozenset({S.RUNNING, S.FETCHING_INPUT}),
    S.CONVERTING_OUTPUT: frozenset({S.RUNNING}),
    S.PUSHING_OUTPUT: frozenset({S.RUNNING, S.CONVERTING_OUTPUT}),
    S.CANCELING: frozenset({S.INACTIVE, S.QUEUED, S.RUNNING}),
    S.SUCCESS: frozenset({S.RUNNING, S.PUSHING_OUTPUT}),
    S.ERROR: frozenset(
        {
            S.FETCHING_INPUT,
            S.CONVERTING_INPUT,
            S.CONVERTING_OUTPUT,
            S.PUSHING_OUTPUT,
            S.CANCELING,
            S.QUEUED,
            S.RUNNING,
        }
    ),
}
_WORKER_HANDLER = {
    **_WORKER_PLUGIN_COMMON,
    S.RUNNING: frozenset({S.QUEUED, S.FETCHING_INPUT}),
    S.CANCELED: frozenset({S.CANCELING, S.QUEUED, S.RUNNING}),
}
_CELERY_HANDLER = {
    **_WORKER_PLUGIN_COMMON,
    S.RUNNING: frozenset({S.INACTIVE, S.QUEUED, S.FETCHING_INPUT}),
    S.CANCELED: frozenset({S.CANCELING, S.INACTIVE, S.QUEUED, S.RUNNING}),
}
del S

#: Girder 5's transition tables: handler -> target status -> allowed previous
#: statuses. ``None`` is the table of girder-jobs, used for every other handler.
TRANSITIONS: Mapping[str | None, Mapping[JobStatus, frozenset[JobStatus]]] = {
    None: _GIRDER_JOBS,
    "worker_handler": _WORKER_HANDLER,
    "celery_handler": _CELERY_HANDLER,
}


def _table(handler: str | None) -> Mapping[JobStatus, frozenset[JobStatus]]:
    return TRANSITIONS.get(handler) or TRANSITIONS[None]

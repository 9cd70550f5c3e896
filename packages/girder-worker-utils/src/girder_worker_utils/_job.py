"""What a task sees of the Girder job that stands for it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["GIRDER_HEADERS", "GIRDER_OPTIONS", "JobManager"]

#: Request attribute where the worker keeps a run's :class:`JobManager`.
JOB_MANAGER_ATTR = "girder_worker_job_manager"
#: Request attribute where the worker keeps a run's Girder client (made on first use).
GIRDER_CLIENT_ATTR = "girder_worker_girder_client"

#: Options of ``delay``/``apply_async`` that travel as message headers and reach the
#: worker: the Girder API root and a user token that may create jobs.
GIRDER_HEADERS = (
    "girder_api_url",
    "girder_client_token",
    "girder_result_hooks",
    "girder_client_session_kwargs",
)
#: Options of ``delay``/``apply_async`` that say how to create the Girder job; they
#: are used when the message is published and never sent.
GIRDER_OPTIONS = (
    "girder_user",
    "girder_job_title",
    "girder_job_type",
    "girder_job_public",
    "girder_job_handler",
    "girder_job_other_fields",
    "girder_job_disable",
)


@runtime_checkable
class JobManager(Protocol):
    """Reports a running task's log, progress and status to its Girder job.

    A task reaches it as ``self.job_manager`` while it runs a Girder job (``None``
    otherwise). No call waits for Girder: each one records what to send, and the
    worker sends it in the background, batched and rate-limited, so a task may call
    them as often as it likes::

        @task(bind=True)
        def analyse(self, items):
            for i, item in enumerate(items):
                self.job_manager.updateProgress(total=len(items), current=i, message=item)
                self.job_manager.write(f"working on {item}\\n")

    The camel-case names are those of the original girder-worker.
    """

    def write(self, message: str | bytes, forceFlush: bool = False) -> None:  # noqa: N803
        """Append ``message`` (text, or bytes in UTF-8) to the job's log (``forceFlush`` sends it soon)."""

    def updateProgress(  # noqa: N802
        self,
        total: float | None = None,
        current: float | None = None,
        message: str | None = None,
        forceFlush: bool = False,  # noqa: N803
    ) -> None:
        """Set the job's progress; ``None`` leaves a field as it was."""

    def updateStatus(self, status: int) -> None:  # noqa: N802
        """Move the job to ``status`` (a :class:`JobStatus`), after the log so far."""

    def refreshStatus(self) -> int | None:  # noqa: N802
        """Ask Girder for the job's status now (a network round trip); None if unknown."""

    def flush(self) -> None:
        """Send what is waiting as soon as the worker can, without waiting for it."""


def move_girder_options(kwargs: dict[str, Any] | None, options: dict[str, Any]) -> dict[str, Any] | None:
    """Move Girder options out of a task's ``kwargs`` and ``options`` into its headers.

    Returns the task's keyword arguments without them (a new dict when one had to
    change, so the caller's is left as it was); ``options["headers"]`` gets them.
    """
    moved: dict[str, Any] = {}
    if kwargs and not kwargs.keys().isdisjoint(GIRDER_HEADERS + GIRDER_OPTIONS):
        kwargs = dict(kwargs)
    for key in GIRDER_HEADERS + GIRDER_OPTIONS:
        if kwargs and key in kwargs:
            moved[key] = kwargs.pop(key)
        if key in options:
            moved[key] = options.pop(key)
    if moved:
        options["headers"] = {**(options.get("headers") or {}), **moved}
    return kwargs

"""The worker program: Celery's, with girder-worker's lines in the banner."""

from __future__ import annotations

from typing import Any

from celery.apps.worker import Worker as CeleryWorker

from .delivery._delivery import Delivery, watch_run
from .monitoring._task_events import follow

__all__ = ["Worker"]


class Worker(CeleryWorker):  # type: ignore[misc]
    """Celery's worker program; its banner also says where messages live and
    what each plugin loaded, and each task goes to the pool under its delivery policy."""

    delivery: Delivery | None = None
    _runs_in_loop: bool | None = None

    def _process_task(self, req: Any) -> None:
        follow(req, self.hostname)
        if self.delivery is not None and not watch_run(self.delivery, req):
            release = getattr(self, "_quick_release", None)
            if release is not None:  # the pool slot taken for it, as Celery does for a revoked task
                release()
            return
        if self._runs_in_loop is None:
            from celery.concurrency.solo import TaskPool as SoloPool

            self._runs_in_loop = getattr(self, "hub", None) is not None and isinstance(self.pool, SoloPool)
        if self._runs_in_loop:
            _acknowledge_at_once(req, self.consumer)
        super()._process_task(req)

    def startup_info(self, artlines: bool = True) -> str:
        info: str = super().startup_info(artlines=artlines)
        data_dir = self.app.girder_worker_config.data_dir
        if data_dir is None:
            return info
        note = f".> broker:      embedded, no server needed; messages and results in {data_dir}"
        lines = info.splitlines()
        for i, line in enumerate(lines):
            if ".> results:" in line:
                lines.insert(i + 1, " " * line.index(".>") + note)
                break
        return "\n".join(lines) + "\n"

    def extra_info(self) -> Any:
        info = super().extra_info() or ""
        reports = self.app.plugin_reports or []
        if not reports:
            return info + "\n[plugins]\n  (none installed)\n"
        lines = []
        for report in reports:
            if report.loaded:
                lines.append(f"  . {report.name} ({report.distribution} {report.version}): {len(report.tasks)} task(s)")
            else:
                lines.append(f"  ! {report.name}: {report.error}")
        return info + "\n[plugins]\n" + "\n".join(lines) + "\n"


def _acknowledge_at_once(request: Any, consumer: Any) -> None:
    """Make ``request`` acknowledge its message when it starts, not when it ends.

    Celery hands a message's acknowledgement to the event loop (``call_soon``),
    which runs it at the loop's next turn. A solo worker runs the task inside the
    current turn, so the message stayed unacknowledged for the whole run: RabbitMQ's
    ``consumer_timeout`` cut long tasks off, and Redis's ``visibility_timeout``
    delivered them again. The loop is this thread, so the acknowledgement can be
    written at once. (Right after a reconnection Celery chains its prefetch-count
    restoration to the deferred acknowledgement; that case keeps Celery's way.)
    """
    if consumer is None or (consumer.restart_count > 0 and not consumer._maximum_prefetch_restored):
        return
    message = request._message
    request._on_ack = message.ack_log_error

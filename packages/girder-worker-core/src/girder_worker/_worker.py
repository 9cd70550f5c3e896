"""The worker program: Celery's, with girder-worker's lines in the banner."""

from __future__ import annotations

import gc
from functools import cached_property
from typing import Any

from celery.apps.worker import Worker as CeleryWorker

from ._celery_internals import process_task
from .broker._solo_acks import SoloAcks
from .delivery._delivery import Delivery, watch_run
from .monitoring._task_events import follow

__all__ = ["Worker"]


class Worker(CeleryWorker):  # type: ignore[misc]
    """Celery's worker program; its banner also says where messages live and
    what each plugin loaded, and each task goes to the pool under its delivery policy."""

    delivery: Delivery | None = None
    #: The timer thread's scheduler of girder-worker's per-run deadlines (set by its time-limit step).
    run_timer: Any = None

    def start(self) -> Any:
        # Everything imported by now (Celery, kombu, girder-worker, the plugins) goes to the
        # garbage collector's permanent generation before the pool processes are forked, so a
        # collection in a pool process never writes to those objects' pages: they stay shared
        # with the main process instead of being copied into each pool process (gc.freeze,
        # Python's recipe for servers that fork). A prefork worker's memory (PSS of its processes)
        # after 2000 tasks, -c 2: 146 MB without, 110 MB with (plain Celery: 113 MB).
        # No gc.collect() first: at this point it found 40-60 unreachable objects among
        # ~65,000 and took 12-16 ms of the start; freezing those few costs nothing worth it.
        gc.freeze()
        return super().start()

    def _process_task(self, req: Any) -> None:  # Celery's private per-task hook: see process_task
        try:
            process_task(self, req, super()._process_task)
        finally:
            acks = self.solo_acks
            if acks is not None:  # a solo run has ended here
                acks.end()

    @cached_property
    def solo_acks(self) -> SoloAcks | None:
        """What holds a solo run's acknowledgement (None in other pools); read once the pool is made."""
        from celery.concurrency.solo import TaskPool as SoloPool

        in_loop = getattr(self, "hub", None) is not None and isinstance(self.pool, SoloPool)
        return SoloAcks(self.run_timer, self.consumer) if in_loop and self.run_timer is not None else None

    def prepare_run(self, req: Any) -> bool:
        """Set ``req``'s run up before it goes to the pool; False if it must not run (handled here)."""
        follow(req, self.hostname)
        if self.delivery is not None and not watch_run(self.delivery, req):
            return False
        acks = self.solo_acks
        if acks is not None:
            acks.begin(req)
        return True

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

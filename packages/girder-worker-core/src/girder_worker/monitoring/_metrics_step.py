"""The worker bootstep that serves Prometheus metrics (``GIRDER_WORKER_METRICS_PORT``).

Before the pool forks, it gives the worker a private directory for
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), in which
every process of the worker writes its own counts, and turns the metrics of
:mod:`._metrics` on. Once the pool runs, the main process serves
``/metrics`` over HTTP from a thread, adding up the files of every process, those
of pool processes that have ended included. The directory goes when the worker
exits.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from celery import bootsteps

from .._celery_internals import use_prometheus_multiprocess_values
from ..delivery._pids import pid_alive
from . import _metrics

__all__ = ["MetricsStep"]

logger = logging.getLogger("girder_worker.metrics")

_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")
_DIR_PREFIX = "girder-worker-metrics-"
_DIR_PID = re.compile(rf"^{_DIR_PREFIX}(\d+)-")


class _WorkerCollector:
    """prometheus_client's multiprocess collector, which first forgets the live gauges
    of processes that are gone (a pool process killed has no chance to)."""

    def __init__(self, path: str) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self.path = path
        self.collector = MultiProcessCollector(None, path=path)

    def collect(self) -> Iterator[Any]:
        from prometheus_client import multiprocess

        for name in glob.glob(os.path.join(self.path, "gauge_live*_*.db")):
            match = _LIVE_FILE.search(name)
            if match and not pid_alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), self.path)
        return iter(self.collector.collect())


def _sweep_stale_dirs() -> None:
    """Remove the directories of this user's workers that were killed before they could."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{_DIR_PREFIX}*-*")):
        match = _DIR_PID.search(os.path.basename(path))
        try:
            mine = os.stat(path, follow_symlinks=False).st_uid == os.geteuid()
        except OSError:
            continue
        if match and mine and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked process that happens to run exit handlers
        shutil.rmtree(path, ignore_errors=True)


class MetricsStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: the multiprocess directory, the metrics, the HTTP endpoint."""

    label = "girder-worker metrics"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        config = worker.app.girder_worker_config
        self.port: int = config.metrics_port
        self.address: str = config.metrics_address
        self.path: str | None = None
        self.server: Any = None
        self.thread: Any = None
        self.registry: Any = None

    def create(self, worker: Any) -> None:
        _sweep_stale_dirs()
        # Before prometheus_client is imported: it picks its multiprocess mode then.
        self.path = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")  # 0700
        atexit.register(_remove, self.path, os.getpid())
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.path
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            logger.error(
                "GIRDER_WORKER_METRICS_PORT is set, but prometheus_client is not installed; "
                "install it with `pip install girder-worker-core[metrics]`, or unset the variable"
            )
            raise SystemExit(2) from None
        # prometheus_client may have been imported earlier in this process (by a plugin,
        # say) without the variable.
        use_prometheus_multiprocess_values()
        _metrics.enable(worker.app)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WorkerCollector(self.path))

    def start(self, worker: Any) -> None:
        from prometheus_client import start_http_server

        try:
            self.server, self.thread = start_http_server(self.port, self.address, registry=self.registry)
        except OSError as exc:
            logger.error(
                "GIRDER_WORKER_METRICS_PORT: cannot serve metrics on %s:%s (%s); choose a free port "
                "(each worker on a host needs its own) or unset the variable",
                self.address,
                self.port,
                exc.strerror or exc,
            )
            raise SystemExit(2) from None
        host = f"[{self.address}]" if ":" in self.address else self.address
        logger.info("metrics at http://%s:%d/metrics", host, self.server.server_port)

    def stop(self, worker: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

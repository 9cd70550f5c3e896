"""Containers a dead worker left running are stopped and removed when a worker starts.

A worker killed outright (SIGKILL, out of memory, the machine lost power) cannot
stop its containers; Docker keeps them running. Each container carries the
labels of the worker that started it (:mod:`._container`), and at start a worker
reaps those whose worker is gone: started on this host by a process that no
longer exists (or by this very process id: a restarted container of a worker),
or started under this worker's node name on another host. Containers of live
workers are never touched.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from celery import bootsteps

from ..delivery._pids import pid_alive
from ._container import HOST_LABEL, PID_LABEL, REMOVE_LABEL, TASK_LABEL, WORKER, WORKER_LABEL

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ReaperStep", "reap"]

logger = logging.getLogger("girder_worker.docker")


def orphaned(labels: dict[str, str], nodename: str | None, host: str, pid: int) -> bool:
    """Whether the worker that started a container with ``labels`` is gone."""
    if labels.get(HOST_LABEL) == host:
        try:
            owner = int(labels.get(PID_LABEL, ""))
        except ValueError:
            return False
        return owner == pid or not pid_alive(owner)
    return bool(nodename) and labels.get(WORKER_LABEL) == nodename


def reap(engine: Engine, nodename: str | None, host: str | None = None, pid: int | None = None) -> list[str]:
    """Stop and remove the orphaned containers; returns their names."""
    host = host or socket.gethostname()
    pid = os.getpid() if pid is None else pid
    reaped = []
    for container in engine.containers(TASK_LABEL):
        labels = container.labels
        if not orphaned(labels, nodename, host, pid):
            continue
        if container.status in ("exited", "dead") and labels.get(REMOVE_LABEL) != "1":
            continue  # kept on purpose (remove_container=False)
        logger.warning(
            "removing container %s (%s) of task %s: the worker that started it (%s, pid %s on %s) is gone",
            container.name,
            container.status,
            labels.get(TASK_LABEL),
            labels.get(WORKER_LABEL, "?"),
            labels.get(PID_LABEL, "?"),
            labels.get(HOST_LABEL, "?"),
        )
        try:
            engine.remove(container)
            reaped.append(container.name)
        except Exception as exc:
            logger.warning("could not remove container %s: %s", container.name, exc)
    return reaped


class ReaperStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: label this worker's containers, and reap a dead worker's at start."""

    label = "girder-worker docker reaper"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        # Before the pool starts, so prefork children label with the main process.
        WORKER.nodename = worker.hostname
        WORKER.pid = os.getpid()
        self.thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        hub = getattr(worker, "hub", None)
        if hub is not None:
            # Housekeeping, not readiness: the event loop's second turn begins it, in this
            # thread, once the worker takes tasks (with an engine the Docker SDK reaches,
            # its import takes ~0.4 s).
            # Not the first turn: kombu runs call_soon callbacks before the turn's on_tick
            # callbacks, and Redis subscribes the worker's broadcast queue (celery control,
            # revoke) in one of those; a control command sent while the import held the
            # loop would be lost (Redis PUBLISH reaches only subscribers).
            hub.call_soon(hub.call_soon, self.begin)
        else:
            self.begin()

    def begin(self) -> None:
        # Here, in the main thread, after the worker is ready (http.client and this
        # package's engine: 5 ms of every start); the reaper's thread imports nothing.
        from ._engine import engine_for, local_socket

        if local_socket() is None:
            # An engine the SDK reaches (tcp://, ssh://): import it here, in the main
            # thread: a prefork pool process forked while another thread held an import
            # lock would wait for that lock for ever at its first import of the same module.
            import docker  # noqa: F401
        self.thread = threading.Thread(
            target=self._reap, args=(engine_for,), name="girder-worker-docker-reaper", daemon=True
        )
        self.thread.start()

    def _reap(self, engine_for: Any) -> None:
        try:
            engine = engine_for()
        except Exception as exc:
            logger.warning("docker: not checking for containers left by dead workers: %s", exc)
            return
        try:
            reaped = reap(engine, WORKER.nodename, pid=WORKER.pid)
            if reaped:
                logger.info("docker: removed %d container(s) left by dead workers", len(reaped))
        except Exception as exc:
            logger.warning("docker: could not check for containers left by dead workers: %s", exc)
        finally:
            engine.close()

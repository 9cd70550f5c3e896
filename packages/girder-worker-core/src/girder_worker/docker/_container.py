"""Creating the container of a run: its options, labels, name and GPUs.

Every container gets the labels :data:`TASK_LABEL` (the Celery task id),
:data:`WORKER_LABEL` (the worker's node name), :data:`HOST_LABEL` and
:data:`PID_LABEL` (the worker's host and main process), by which
:mod:`._reaper` finds the containers that a dead worker left running.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from . import nvidia

__all__ = ["TASK_LABEL", "WORKER_LABEL", "create_kwargs", "gpu_refused", "labels_for", "without_gpu"]

logger = logging.getLogger("girder_worker.docker")

TASK_LABEL = "girder_worker.task_id"
WORKER_LABEL = "girder_worker.worker"
HOST_LABEL = "girder_worker.host"
PID_LABEL = "girder_worker.pid"
#: Set on containers the worker removes after the run, so the reaper removes them too.
REMOVE_LABEL = "girder_worker.remove"


class _Worker:
    """Who runs containers in this process: set by the reaper bootstep in the main process."""

    nodename: str | None = None
    pid: int = os.getpid()


WORKER = _Worker()


def labels_for(task_id: str | None) -> dict[str, str]:
    labels = {TASK_LABEL: task_id or "", HOST_LABEL: socket.gethostname(), PID_LABEL: str(WORKER.pid)}
    if WORKER.nodename:
        labels[WORKER_LABEL] = WORKER.nodename
    return labels


def _gpu_request() -> Any:
    import docker  # type: ignore[import-untyped,import-not-found]

    return docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])  # type: ignore[attr-defined]


def wants_gpu(client: Any, image: str, kwargs: dict[str, Any]) -> bool:
    """Whether the call (``runtime="nvidia"``) or the image's label asks for NVIDIA GPUs."""
    if kwargs.get("device_requests") is not None:
        return False  # the caller said exactly what it wants
    if kwargs.get("runtime") == "nvidia":
        return True
    return nvidia.is_nvidia_image(client.api, image)


def create_kwargs(
    client: Any, image: str, command: list[str], options: dict[str, Any], task_id: str | None
) -> dict[str, Any]:
    """The keyword arguments of ``client.containers.create`` for a run."""
    kwargs = dict(options)
    kwargs["image"] = image
    kwargs["command"] = command
    kwargs.setdefault("name", f"girder_worker_{uuid.uuid4().hex[:12]}")
    kwargs["labels"] = {**(kwargs.get("labels") or {}), **labels_for(task_id)}
    kwargs["tty"] = False
    kwargs["stdin_open"] = False
    kwargs.pop("detach", None)
    kwargs.pop("remove", None)  # removed by the worker, after it read the exit code
    if wants_gpu(client, image, kwargs):
        kwargs.pop("runtime", None)  # the NVIDIA runtime is what Docker < 19.03 needed
        kwargs["device_requests"] = [_gpu_request()]
    return kwargs


def gpu_refused(exc: BaseException) -> bool:
    """Whether starting failed because the engine has no GPU to give (no NVIDIA runtime)."""
    return "device driver" in str(exc) and "gpu" in str(exc)


def without_gpu(kwargs: dict[str, Any]) -> dict[str, Any]:
    logger.warning(
        "docker image %s asks for NVIDIA GPUs, which this Docker Engine cannot give; running it without",
        kwargs["image"],
    )
    return {k: v for k, v in kwargs.items() if k != "device_requests"}

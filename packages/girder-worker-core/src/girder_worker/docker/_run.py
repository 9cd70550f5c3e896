"""One ``docker_run``, start to end: the steps, in order.

1. the container's options: the site's own (``GIRDER_WORKER_DOCKER_RUN_OPTIONS``),
   with the caller's over them where the site's policy lets them (:mod:`._policy`:
   options, the site's options, host paths, image; ``environment`` and ``labels``
   merged); a refusal ends the run here;
2. the image, by the pull policy (:mod:`._images`); labels with the task id
   (:mod:`._container`); the ``none`` log driver for a container that is removed;
3. the streams: arguments that are connectors become their pipe's container path;
4. create, attach to stdout/stderr, start (without GPUs if the engine has none);
5. pump bytes until the container exits or the run is cancelled (:mod:`._pump`);
   a cancel stops the container (SIGTERM, SIGKILL after the stop timeout);
6. the exit code; the container is removed; a non-zero exit fails the run with
   the code and the last lines of output.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from girder_worker_utils.worker import result_hooks

from ._client import RESERVED_RUN_OPTIONS, docker_client, run_options
from ._container import REMOVE_LABEL, TASK_LABEL, create_kwargs, gpu_refused, without_gpu
from ._images import ensure_image
from ._output import ContainerOutput, Tail, Teed
from ._policy import check, container_options, own_volumes, policy_from_env
from ._pump import Pump, wake_pipe

__all__ = ["ContainerError", "run", "stop_timeout"]

logger = logging.getLogger("girder_worker.docker")

#: Seconds of a cancel grace period kept for killing and removing the container.
_MARGIN = 5.0
#: Docker's own stop timeout, used when the worker never terminates cancelled tasks.
_DOCKER_STOP_TIMEOUT = 10.0


class ContainerError(RuntimeError):
    """The container exited with a non-zero code; the message has the code and its last lines."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def stop_timeout(task: Any) -> float:
    """Seconds a cancelled run's container gets between SIGTERM and SIGKILL.

    The task's ``container_stop_timeout`` if it sets one, else its cancel grace
    period less a margin to kill and remove the container before the worker
    terminates the task.
    """
    explicit = getattr(task, "container_stop_timeout", None)
    if explicit is not None:
        return float(explicit)
    from ..cancellation._cancel import grace_period

    app = getattr(task, "app", None)
    grace = grace_period(task, app) if getattr(app, "girder_worker_config", None) is not None else None
    if grace is None:
        return _DOCKER_STOP_TIMEOUT
    return max(0.0, grace - min(_MARGIN, grace / 2))


def _stream_kind(connector: Any) -> int | None:
    from .transforms import ContainerStdErr, ContainerStdOut

    if isinstance(connector.input, ContainerStdOut):
        return 1
    if isinstance(connector.input, ContainerStdErr):
        return 2
    return None


def _split_streams(container_args: list[Any], stream_connectors: list[Any]) -> tuple[list[str], list[Any], list[Any]]:
    from .io import FDReadStreamConnector, FDStreamConnector, FDWriteStreamConnector

    args: list[str] = []
    readers: list[Any] = []
    writers: list[Any] = []
    for arg in container_args:
        if isinstance(arg, FDStreamConnector):
            (writers if isinstance(arg, FDWriteStreamConnector) else readers).append(arg)
            side = arg.output if isinstance(arg, FDWriteStreamConnector) else arg.input
            path = getattr(side, "path", None)
            arg = path() if callable(path) else ""
        elif callable(getattr(arg, "path", None)) and hasattr(arg, "fileno"):  # a bare pipe end
            arg = arg.path()
        args.append(str(arg))
    for connector in stream_connectors:
        if isinstance(connector, FDReadStreamConnector):
            readers.append(connector)
        elif isinstance(connector, FDWriteStreamConnector):
            writers.append(connector)
        else:
            raise TypeError(
                f"stream_connectors takes FDReadStreamConnector and FDWriteStreamConnector, not {connector!r}"
            )
    return args, readers, writers


def _options(image: str, volumes: Any, kwargs: dict[str, Any], entrypoint: Any, task_id: str | None) -> dict[str, Any]:
    """The container's options: the site's own, with the message's, checked by the site's policy, over them."""
    site = run_options()
    message = {k: v for k, v in kwargs.items() if k not in RESERVED_RUN_OPTIONS}
    if entrypoint is not None:
        message["entrypoint"] = entrypoint  # held against a site's entrypoint as any option
    policy = policy_from_env(own_paths=own_volumes())
    binds = check(image, message, volumes, site, task_id, policy)
    options = container_options(message, site, policy, task_id)
    options["volumes"] = {**binds, **site.get("volumes", {})}
    if entrypoint is not None:
        options["entrypoint"] = list(entrypoint) if isinstance(entrypoint, (list, tuple)) else [entrypoint]
    return options


def _attach(container: Any) -> Any:
    return container.attach_socket(params={"stdout": 1, "stderr": 1, "stream": 1})


def _start(client: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Create, attach and start; returns ``(container, attach socket)``."""
    import docker  # type: ignore[import-untyped,import-not-found]

    container = client.containers.create(**kwargs)
    sock = _attach(container)
    try:
        container.start()
    except docker.errors.APIError as exc:
        sock.close()
        container.remove(force=True)
        if not (kwargs.get("device_requests") and gpu_refused(exc)):
            raise
        return _start(client, without_gpu(kwargs))
    return container, sock


def _stop(container: Any, timeout: float, reason: str) -> None:
    import docker
    import requests

    logger.info("stopping container %s (%s): SIGTERM, SIGKILL after %g s", container.name, reason, timeout)
    try:
        container.stop(timeout=round(timeout))
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        logger.warning("could not stop container %s (%s); killing it", container.name, exc)
        with contextlib.suppress(docker.errors.APIError):
            container.kill()


def _exit_code(container: Any) -> int:
    status = container.wait()
    return int(status.get("StatusCode", -1))


def _remove(container: Any) -> None:
    import docker
    import requests

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        logger.warning("could not remove container %s: %s", container.name, exc)


def run(
    task: Any,
    image: str,
    pull_image: Any = True,
    entrypoint: Any = None,
    container_args: list[Any] | None = None,
    volumes: Any = None,
    remove_container: bool = True,
    stream_connectors: list[Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Run ``image`` for ``task``; see :func:`girder_worker.docker.tasks.docker_run`."""
    task_id = getattr(getattr(task, "request", None), "id", None)
    # The site's policy, before anything is pulled or created (see ._policy).
    options = _options(image, volumes, kwargs, entrypoint, task_id)
    client = docker_client()
    try:
        ensure_image(client, image, pull_image)
        args, readers, writers = _split_streams(list(container_args or []), list(stream_connectors or []))
        create = create_kwargs(client, image, args, options, task_id)
        if remove_container:
            create["labels"][REMOVE_LABEL] = "1"
            # The worker reads the output from the attach stream, and the container's
            # logs go with it: the engine's json-file copy of every byte would only
            # slow the stream (to ~20 MB/s on dockerd 20.10, from ~150 without).
            create.setdefault("log_config", {"type": "none", "config": {}})
        cancelled = _run_container(task, client, create, readers, writers, remove_container)
    finally:
        client.close()
    if cancelled:
        return ()
    hooks = result_hooks(getattr(task, "request", None))
    return (None,) * len(hooks) if hooks else ()


def _cancelled(task: Any) -> bool:
    return bool(getattr(task, "cancelled", False))


def _run_container(
    task: Any, client: Any, create: dict[str, Any], readers: list[Any], writers: list[Any], remove: bool
) -> bool:
    tail = Tail()
    sinks: dict[int, Any] = {}
    plain_readers = []
    for connector in readers:
        kind = _stream_kind(connector)
        if kind is None:
            plain_readers.append(connector)
        elif kind not in sinks:
            sinks[kind] = connector.output
    sinks.setdefault(1, ContainerOutput(task, "stdout"))
    sinks.setdefault(2, ContainerOutput(task, "stderr"))
    sinks = {kind: Teed(sink, tail) for kind, sink in sinks.items()}
    for connector in plain_readers:
        connector.open()  # before the container opens the other end
    wake_fd, wake, close_wake = wake_pipe()
    on_cancel = getattr(task, "on_cancel", None)
    if callable(on_cancel):
        on_cancel(wake)
    container = None
    pump: Pump | None = None
    try:
        if _cancelled(task):
            return True
        container, sock = _start(client, create)
        task_label = create["labels"][TASK_LABEL]
        logger.info("task %s: started container %s of image %s", task_label, container.name, create["image"])
        pump = Pump(sock, sinks, plain_readers, writers, wake_fd)
        try:
            cancelled = pump.run(lambda: _cancelled(task))
            if cancelled:
                # Stop in another thread and keep reading: what the container says while
                # it stops (its SIGTERM handler's output) still reaches the logs.
                stopper = threading.Thread(
                    target=_stop,
                    args=(container, stop_timeout(task), getattr(task, "cancel_reason", None) or "cancelled"),
                    name="girder-worker-docker-stop",
                    daemon=True,
                )
                stopper.start()
                pump.run(lambda: False)
                stopper.join()
            code = _exit_code(container)
        finally:
            sock.close()
            pump.finish()
        if not cancelled and code != 0:
            last = tail.text()
            raise ContainerError(
                f"Non-zero exit code from docker container ({code}): image {create['image']}, "
                f"container {container.name}" + (f"; its last lines:\n{last}" if last else "; it printed nothing"),
                exit_code=code,
            )
        return cancelled
    finally:
        close_wake()
        if pump is None:
            for connector in [*plain_readers, *writers]:
                with contextlib.suppress(OSError):
                    connector.close()
        if container is not None:
            if remove:
                _remove(container)
            else:
                with contextlib.suppress(Exception):
                    container.reload()
                    if container.status == "running":
                        _stop(container, 0, "the run ended")

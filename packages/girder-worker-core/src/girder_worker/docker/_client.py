"""The Docker client and the worker-wide run options, from the environment.

``DOCKER_CLIENT_TIMEOUT`` (seconds) bounds each call to the Docker Engine;
``GIRDER_WORKER_DOCKER_RUN_OPTIONS`` is a JSON object of Docker SDK
``containers.run`` options merged into every run (``tty`` and ``detach`` are the
worker's; ``volumes`` may be a list of ``"host:container[:mode]"``, mode ``ro``
by default). Both are read at each run, and an invalid value fails the run with
one line naming the variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["DockerSetupError", "docker_client", "run_options"]

#: Options a run's caller or the environment may not set: the worker's own.
RESERVED_RUN_OPTIONS = frozenset({"tty", "detach", "volumes"})


class DockerSetupError(RuntimeError):
    """The Docker configuration of this worker is unusable; the message says how to fix it."""


def _sdk() -> Any:
    try:
        import docker  # type: ignore[import-untyped,import-not-found]
    except ImportError as exc:
        raise DockerSetupError(
            "docker_run needs the Docker SDK for Python: pip install 'girder-worker-core[docker]'"
        ) from exc
    return docker


def client_timeout(env: Mapping[str, str] | None = None) -> int | None:
    """``DOCKER_CLIENT_TIMEOUT`` in seconds, or None for the SDK's default."""
    text = (os.environ if env is None else env).get("DOCKER_CLIENT_TIMEOUT", "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise DockerSetupError(f"DOCKER_CLIENT_TIMEOUT={text!r} is not a positive number of seconds; fix or unset it")
    return value


def docker_client(env: Mapping[str, str] | None = None) -> Any:
    """A Docker client for the engine ``DOCKER_HOST`` names (default: the local socket)."""
    docker = _sdk()
    timeout = client_timeout(env)
    kwargs: dict[str, Any] = {"version": "auto"}
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        return docker.from_env(**kwargs)
    except docker.errors.DockerException as exc:
        raise DockerSetupError(
            f"cannot reach the Docker Engine ({exc}); is dockerd running, and DOCKER_HOST right?"
        ) from exc


def _mounts(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    mounts: dict[str, Any] = {}
    for spec in value:
        host, container, mode = ([*str(spec).split(":"), "ro"])[:3]
        if not host or not container:
            raise ValueError(f"volume {spec!r} is not host:container[:mode]")
        mounts[host] = {"bind": container, "mode": mode}
    return mounts


def run_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The options ``GIRDER_WORKER_DOCKER_RUN_OPTIONS`` adds to every run; ``volumes`` as a dict."""
    text = (os.environ if env is None else env).get("GIRDER_WORKER_DOCKER_RUN_OPTIONS", "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
        if not isinstance(options, dict):
            raise ValueError("it is not a JSON object")
        result = {k: v for k, v in options.items() if k not in RESERVED_RUN_OPTIONS}
        if "volumes" in options:
            result["volumes"] = _mounts(options["volumes"])
    except (ValueError, TypeError) as exc:
        raise DockerSetupError(
            f"GIRDER_WORKER_DOCKER_RUN_OPTIONS is not a JSON object of Docker run options ({exc}); "
            'fix it, for example {"network_mode": "none", "volumes": ["/data:/data:ro"]}'
        ) from exc
    return result

"""The two Docker Engine API calls a starting worker makes, without the Docker SDK.

At start a worker lists the containers its dead predecessors left and removes
them (:mod:`._reaper`). Loading the Docker SDK for that (it brings requests,
urllib3 and charset_normalizer) took ~0.4 s of every worker's start here and
~5 MB of its main process, for two HTTP requests. On the local socket (no
``DOCKER_HOST``, or a ``unix://`` one) the worker makes them with the standard
library; the SDK is loaded where a task runs a container. An engine elsewhere
(``tcp://``, ``ssh://``, TLS) is reached with the SDK, as before.

``http.client`` is imported with this module, in the main thread: the reaper's
thread imports nothing, so a prefork pool process forked meanwhile cannot
inherit a held import lock.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._client import client_timeout, docker_client

__all__ = ["Container", "Engine", "EngineError", "LocalEngine", "SdkEngine", "engine_for", "local_socket"]

#: Docker's default socket, and the SDK's default timeout for a call (seconds).
DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_TIMEOUT = 60
#: The most a container listing may hold; a larger answer is refused, not read.
MAX_LISTING_BYTES = 64 * 1024 * 1024


class EngineError(RuntimeError):
    """An Engine API call failed; the message says which and why."""


@dataclass(frozen=True)
class Container:
    """What the reaper needs of a container."""

    id: str
    name: str
    status: str
    labels: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    def containers(self, label: str) -> list[Container]: ...
    def remove(self, container: Container) -> None: ...
    def close(self) -> None: ...


def local_socket(env: Mapping[str, str] | None = None) -> str | None:
    """The Unix socket of the engine ``DOCKER_HOST`` names, or None when it names another kind."""
    host = (os.environ if env is None else env).get("DOCKER_HOST", "").strip()
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://") :] or None
    return None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class LocalEngine:
    """The Engine API on a local Unix socket, over ``http.client``."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout

    def _call(self, method: str, url: str, limit: int, what: str) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request(method, url, headers={"Host": "docker"})
            response = conn.getresponse()
            body = response.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(
                f"{what} on {self.path}: {exc or type(exc).__name__}; is dockerd running, and DOCKER_HOST right?"
            ) from exc
        finally:
            conn.close()
        if len(body) > limit:
            raise EngineError(f"{what} on {self.path}: the answer is larger than {limit} bytes")
        return response.status, body

    @staticmethod
    def _failure(status: int, body: bytes) -> str:
        try:
            message = json.loads(body).get("message", "")
        except (ValueError, AttributeError, RecursionError):  # RecursionError: nested too deep to decode
            message = ""
        return f"HTTP {status}" + (f": {message}" if message else "")

    def containers(self, label: str) -> list[Container]:
        query = urllib.parse.urlencode({"all": "1", "filters": json.dumps({"label": [label]})})
        status, body = self._call("GET", f"/containers/json?{query}", MAX_LISTING_BYTES, "listing containers")
        if status != 200:
            raise EngineError(f"listing containers on {self.path}: {self._failure(status, body)}")
        try:
            rows = json.loads(body)
            return [
                Container(
                    id=str(row["Id"]),
                    name=str((row.get("Names") or [row["Id"]])[0]).lstrip("/"),
                    status=str(row.get("State", "")),
                    labels={str(k): str(v) for k, v in (row.get("Labels") or {}).items()},
                )
                for row in rows
            ]
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise EngineError(f"listing containers on {self.path}: not the Engine API's answer ({exc!r})") from exc

    def remove(self, container: Container) -> None:
        url = f"/containers/{urllib.parse.quote(container.id, safe='')}?force=1"
        status, body = self._call("DELETE", url, 64 * 1024, f"removing container {container.name}")
        if status not in (204, 404):  # 404: removed meanwhile (another worker reaped it)
            raise EngineError(f"removing container {container.name}: {self._failure(status, body)}")

    def close(self) -> None:
        pass


class SdkEngine:
    """The same calls through a Docker SDK client, for an engine that is not on a local socket."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def containers(self, label: str) -> list[Container]:
        return [
            Container(c.id, c.name, c.status, dict(c.labels or {}))
            for c in self.client.containers.list(all=True, filters={"label": label})
        ]

    def remove(self, container: Container) -> None:
        self.client.containers.get(container.id).remove(force=True)

    def close(self) -> None:
        self.client.close()


def engine_for(env: Mapping[str, str] | None = None) -> Engine:
    """The engine ``DOCKER_HOST`` names; the Docker SDK is imported only when it is not a local socket."""
    path = local_socket(env)
    if path is not None:
        return LocalEngine(path, client_timeout(env) or DEFAULT_TIMEOUT)
    return SdkEngine(docker_client(env))

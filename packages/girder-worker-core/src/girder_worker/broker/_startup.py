"""A worker's first connection to its broker and result backend, the same on every broker.

Before Celery starts, ``girder-worker`` connects to the broker (and to a Redis
result backend) itself, so that every start-up failure reads the same way:

- unreachable (refused, timed out, unknown host): one line per attempt naming the
  URL (password masked), the error and the fix, then a retry after 2, 4, 6, ... up
  to 30 s (kombu's intervals, as Celery's own reconnections), for ever unless
  ``GIRDER_WORKER_BROKER_MAX_RETRIES`` bounds it (then exit status 1);
- refused for good (wrong user or password, unknown virtual host or Redis
  database): one line and exit status 2, as retrying cannot help.

No traceback either way. Once both answer, Celery's worker starts as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ._outages import is_redis_url, masked

__all__ = ["Refused", "check_connection", "wait_for_servers"]

_INTERVAL_START = 2.0
_INTERVAL_STEP = 2.0
_INTERVAL_MAX = 30.0


@dataclass
class Refused:
    """A server refused the worker for a reason retrying cannot fix."""

    problem: str
    fix: str


def _permanent(exc: BaseException, role: str, variable: str) -> Refused | None:
    """The refusal ``exc`` stands for, or ``None`` when a retry may succeed."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if name == "AccessRefused" or name == "AuthenticationError" or "WRONGPASS" in text or "NOAUTH" in text:
        return Refused(
            f"refused the login ({text})",
            f"fix the user name and password in {variable}",
        )
    if name == "NotAllowed":  # AMQP 530: the virtual host does not exist, or the user may not use it
        return Refused(
            f"refused the virtual host ({text})",
            f"fix the virtual host in {variable} (the part after the last '/'; '//' is the default '/'), "
            "or create it and grant the user access (rabbitmqctl add_vhost, set_permissions)",
        )
    if name == "ResponseError" and "DB index" in text:
        return Refused(f"has no such database ({text})", f"use a database number the server has in {variable}")
    if name == "ResponseError" and role == "result backend":
        return Refused(f"answered an error ({text})", f"check the server {variable} names")
    return None


def _broker_check(app: Any) -> Callable[[], None]:
    def check() -> None:
        conn = app.connection_for_write()
        try:
            # One attempt: the retries and their log lines are this module's.
            conn.ensure_connection(max_retries=0, reraise_as_library_errors=False)
        finally:
            conn.release()

    return check


def _redis_backend_check(app: Any) -> Callable[[], None]:
    def check() -> None:
        client = app.backend.client
        try:
            client.ping()
        finally:
            client.connection_pool.disconnect()

    return check


def _servers(app: Any) -> list[tuple[str, str, str, Callable[[], None]]]:
    """(role, masked URL, variable, check) of each server the worker needs at start."""
    config = app.girder_worker_config
    if config.embedded:
        return []
    servers = [("broker", masked(app.conf.broker_url), "GIRDER_WORKER_BROKER", _broker_check(app))]
    backend = str(app.conf.result_backend or "")
    # The broker's own Redis (the default backend with a Redis broker) is checked as the broker.
    if is_redis_url(backend) and backend != app.conf.broker_url:
        servers.append(("result backend", masked(backend), "GIRDER_WORKER_BACKEND", _redis_backend_check(app)))
    return servers


def check_connection(
    check: Callable[[], None], role: str, variable: str
) -> tuple[BaseException | None, Refused | None]:
    """Run ``check``; return the error it raised (if any) and the refusal it stands for."""
    try:
        check()
    except Exception as exc:
        return exc, _permanent(exc, role, variable)
    return None, None


def wait_for_servers(
    app: Any, err: TextIO, prog: str = "girder-worker", sleep: Callable[[float], None] = time.sleep
) -> int | None:
    """Connect to the broker and result backend until both answer.

    Returns ``None`` when both answered, else the exit status (1: gave up after
    ``GIRDER_WORKER_BROKER_MAX_RETRIES`` retries; 2: refused for good), having
    written one line per attempt to ``err``.
    """
    max_retries = app.girder_worker_config.broker_max_retries
    for role, url, variable, check in _servers(app):
        attempt = 0
        while True:
            attempt += 1
            exc, refused = check_connection(check, role, variable)
            if exc is None:
                break
            if refused is not None:
                print(f"{prog}: error: the {role} at {url} {refused.problem}; {refused.fix}", file=err, flush=True)
                return 2
            problem = " ".join(str(exc).split()) or type(exc).__name__
            cannot = f"{prog}: cannot reach the {role} at {url} ({problem})"
            if max_retries is not None and attempt > max_retries:
                print(
                    f"{prog}: error: gave up on the {role} at {url} after {attempt} attempt(s) ({problem}); "
                    f"start it or fix {variable}; GIRDER_WORKER_BROKER_MAX_RETRIES={max_retries} bounds the retries",
                    file=err,
                    flush=True,
                )
                return 1
            wait = min(_INTERVAL_START + _INTERVAL_STEP * (attempt - 1), _INTERVAL_MAX)
            limit = "no limit" if max_retries is None else f"of {max_retries + 1}"
            print(
                f"{cannot}; start it or fix {variable}; retrying in {wait:g} s (attempt {attempt}, {limit})",
                file=err,
                flush=True,
            )
            sleep(wait)
    return None

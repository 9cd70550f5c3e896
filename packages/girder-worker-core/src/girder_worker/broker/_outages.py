"""Settings that carry workers and clients through broker and result backend outages.

A worker outlives any broker outage: it reconnects for as long as it takes
(Celery's default gives up after 100 attempts, about 45 minutes at kombu's
intervals of 2, 4, ... up to 30 s). A client's publish retries for about :data:`PUBLISH_RETRY_SECONDS` and
then raises :class:`kombu.exceptions.OperationalError`. On RabbitMQ every
message is confirmed by the broker (publisher confirms) through a window of
:data:`DEFAULT_WINDOW` messages (:mod:`girder_worker.broker._rabbitmq`): a message
RabbitMQ did not take is published again or reported, never silently dropped. A
result write (a task's state and return value) retries
across an outage of about two minutes before it fails.

``GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS`` (a JSON object) sets kombu transport
options over these, for example Redis's ``visibility_timeout``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kombu.connection import Connection as KombuConnection
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

__all__ = [
    "DEFAULT_WINDOW",
    "PUBLISH_RETRY_SECONDS",
    "RABBITMQ_SCHEMES",
    "RABBITMQ_TRANSPORTS",
    "TRANSPORTS",
    "WINDOW_OPTION",
    "Connection",
    "PublishError",
    "backend_outage_settings",
    "broker_transport_options",
    "is_redis_url",
    "masked",
    "outage_settings",
    "publish_error",
]

#: How long a client's publish keeps retrying an unreachable broker before it raises.
PUBLISH_RETRY_SECONDS = 10
#: Unconfirmed messages a client may have per RabbitMQ connection before a publish waits
#: (``GIRDER_WORKER_PUBLISH_WINDOW``).
DEFAULT_WINDOW = 64
#: The transport option (``broker_transport_options``) that carries the window to the transport.
WINDOW_OPTION = "girder_worker_publish_window"


def outage_settings() -> dict[str, Any]:
    """The Celery settings of girder-worker's outage behaviour (any broker)."""
    return {
        # None: retry forever. The worker logs each attempt, so an outage is visible.
        "broker_connection_max_retries": None,
        # Retry a result write (and a client's result read) on connection errors, up to
        # 25 times with exponential backoff from 1 s, capped at 10 s, full jitter: about
        # two minutes. Celery's default (no retry) fails a task that succeeded while its
        # result backend restarts: its result write reads the stored state first, and
        # that read has no retry of its own.
        "result_backend_always_retry": True,
        "result_backend_max_retries": 25,
        "result_backend_base_sleep_between_retries_ms": 1000,
        "result_backend_max_sleep_between_retries_ms": 10_000,
        # Publish: retry 0, 1, 2, 2, ... s apart; the connect_retries_timeout transport
        # option below caps the whole at PUBLISH_RETRY_SECONDS (kombu's own cap is
        # broker_connection_timeout, 4 s).
        "task_publish_retry_policy": {"max_retries": 10, "interval_start": 0, "interval_step": 1, "interval_max": 2},
    }


def broker_transport_options(scheme: str, env: Mapping[str, str]) -> dict[str, Any]:
    """kombu transport options for a broker of ``scheme``, with the environment's over them.

    Raises:
        ValueError: ``GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS`` is not a JSON object;
            the message says so in one line.
    """
    options: dict[str, Any] = {"connect_retries_timeout": PUBLISH_RETRY_SECONDS}
    text = env.get("GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS", "").strip()
    if text:
        try:
            extra = json.loads(text)
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise ValueError(f"{text!r} is not a JSON object")
        options.update(extra)
    return options


#: girder-worker's own kombu transports, by the URL scheme each stands in for.
TRANSPORTS = {
    "redis": "girder_worker.broker._redis:Transport",
    "amqp": "girder_worker.broker._rabbitmq:Transport",
    "pyamqp": "girder_worker.broker._rabbitmq:Transport",
    "amqps": "girder_worker.broker._rabbitmq:SSLTransport",
}
#: The schemes of RabbitMQ brokers, whose publishes are confirmed through a window.
RABBITMQ_SCHEMES = frozenset({"amqp", "pyamqp", "amqps"})
#: Those brokers' transports (``broker_transport``).
RABBITMQ_TRANSPORTS = frozenset(TRANSPORTS[scheme] for scheme in RABBITMQ_SCHEMES)
#: The scheme a line names a broker by, for each transport (``amqp``, not ``pyamqp``).
_SCHEME_OF = {path: scheme for scheme, path in TRANSPORTS.items() if scheme != "pyamqp"}


class Connection(KombuConnection):  # type: ignore[misc]
    """kombu's connection, which names a broker reached through one of girder-worker's
    transports by its URL scheme (``amqp://``, ``redis://``), not by the transport's class
    path: in the banner, "Connected to ..." and "Cannot connect to ..." lines."""

    def as_uri(self, *args: Any, **kwargs: Any) -> str:
        uri = str(super().as_uri(*args, **kwargs))
        scheme = _SCHEME_OF.get(self.transport_cls) if isinstance(self.transport_cls, str) else None
        if scheme is not None and uri.startswith(self.transport_cls + "://"):
            return scheme + uri[len(self.transport_cls) :]
        return uri


def masked(url: str) -> str:
    """``url`` with its password replaced by ``**``, as every line naming a server shows it."""
    return str(maybe_sanitize_url(url, mask="**"))


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names a Redis server (``redis://`` or ``rediss://``)."""
    return url.partition("://")[0].lower() in ("redis", "rediss")


def backend_outage_settings(backend_url: str) -> dict[str, Any]:
    """Settings that bound a Redis result backend's reconnections to the publish window.

    A client subscribes to a task's result before it publishes the task; with the
    Redis backend down, Celery's default policy (20 retries a second apart) made
    ``delay()`` fail after about 20 s. Here it gives up after about
    :data:`PUBLISH_RETRY_SECONDS`, as a publish does. A worker's result writes keep
    their longer retries (``result_backend_always_retry``, :func:`outage_settings`).
    """
    if not is_redis_url(backend_url):
        return {}
    policy = {"max_retries": PUBLISH_RETRY_SECONDS, "interval_start": 0, "interval_step": 1, "interval_max": 1}
    return {"result_backend_transport_options": {"retry_policy": policy}}


class PublishError(OperationalError):  # type: ignore[misc]
    """A task was not sent: its broker or result backend stayed unreachable for the publish window.

    Its message is one line: the task, the server's URL (password masked), the
    error and the fix. It is a :class:`kombu.exceptions.OperationalError`, what a
    publish raised before.
    """


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    # Celery's Redis result consumer, giving up on its subscription to the task's result.
    return isinstance(exc, RuntimeError) and "Retry limit exceeded" in str(exc)


def _cause(exc: BaseException) -> str:
    """The first line of the innermost error: what actually failed."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return " ".join(str(exc).split()) or type(exc).__name__


def publish_error(app: Any, task_name: str | None, exc: BaseException) -> PublishError | None:
    """The one-line :class:`PublishError` that a publish's outage error ``exc`` stands for, else ``None``.

    Without it a client sees kombu's or Celery's chain of tracebacks (over 100
    lines with Redis down) ending in a message that names neither the server nor
    the fix.
    """
    if isinstance(exc, PublishError):
        return exc  # already one line (girder_worker.broker._rabbitmq: RabbitMQ refused the message)
    if not _is_outage(exc):
        return None
    broker = str(app.conf.broker_url or "")
    url = broker
    role, variable = "broker", "GIRDER_WORKER_BROKER"
    if isinstance(exc, RuntimeError):
        url = str(app.conf.result_backend or "")
        if url != broker:
            role, variable = "result backend", "GIRDER_WORKER_BACKEND"
    return PublishError(
        f"task {task_name} was not sent: the {role} at {masked(url)} is "
        f"unreachable ({_cause(exc)}); start it or fix {variable}, then publish the task again"
    )

"""The worker's configuration, read from the environment and checked once."""

from __future__ import annotations

import logging
import os
import pwd
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.app.backends import BACKEND_ALIASES
from kombu.transport import TRANSPORT_ALIASES

from ._hints import closest
from .broker._outages import (
    DEFAULT_WINDOW,
    RABBITMQ_SCHEMES,
    RABBITMQ_TRANSPORTS,
    TRANSPORTS,
    WINDOW_OPTION,
    backend_outage_settings,
    broker_transport_options,
    outage_settings,
)
from .broker._private_files import dir_problem, ensure_private_dir

__all__ = ["VARIABLES", "Config", "ConfigError", "check_variables", "read_config"]

logger = logging.getLogger("girder_worker.config")

#: Every environment variable girder-worker reads, with its meaning. The docs'
#: configuration page is checked against this table.
VARIABLES: dict[str, str] = {
    "GIRDER_WORKER_BROKER": "Broker URL (amqp://, redis://, ...). Unset: the embedded broker.",
    "GIRDER_WORKER_BACKEND": "Result backend URL. Unset: a file backend under the data "
    "directory with the embedded broker, the broker's Redis with a Redis broker, rpc:// "
    "with RabbitMQ.",
    "GIRDER_WORKER_DATA_DIR": "Directory of the embedded broker and result backend.",
    "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true runs tasks in the calling process (tests).",
    "GIRDER_WORKER_LOGGING_LEVEL": "Level of the girder_worker logger (default info).",
    "GIRDER_WORKER_LOG_FORMAT": "text (default): Celery's log lines, with the task's name and id on a task's "
    "lines; json: one JSON object per line with time, level, logger, message, task name and id, Girder job id.",
    "GIRDER_WORKER_PLUGINS": "Comma-separated plugin names to load; unset loads all.",
    "GIRDER_WORKER_STRICT_PLUGINS": "true makes a plugin that fails to load stop the worker.",
    "GIRDER_WORKER_STRICT_CONFIG": "true makes an unknown GIRDER_WORKER_* variable in the environment an error "
    "(exit status 2) instead of a warning.",
    "GIRDER_WORKER_BROKER_MAX_RETRIES": "How many times a worker retries an unreachable broker or result backend, "
    "at start and after an outage, before it gives up (default: for ever).",
    "GIRDER_WORKER_CANCEL_GRACE_PERIOD": "Seconds a cancelled task may take to stop before it is "
    "terminated (default 30); never disables termination.",
    "GIRDER_WORKER_API_URL": "Girder API root this worker reports to, replacing the one in each job's callback URL.",
    "GIRDER_WORKER_REPORT_INTERVAL": "Seconds between two log/progress updates of one Girder job (default 0.5).",
    "GIRDER_WORKER_REPORT_RETRY_SECONDS": "How long reports wait for an unreachable Girder before "
    "they are dropped (default 600).",
    "GIRDER_WORKER_JOB_LOG_LIMIT": "Characters of a task's output kept in its Girder job log (default 1000000).",
    "GIRDER_WORKER_DELIVERY": "What happens to a task whose worker is lost while it runs: at-least-once "
    "(default) delivers it again, at-most-once fails it; a task's delivery attribute overrides it.",
    "GIRDER_WORKER_MAX_DELIVERIES": "How many times an at-least-once task may start before it is failed as "
    "lost (default 2).",
    "GIRDER_WORKER_LEASE_SECONDS": "How long a worker may go silent before other workers treat its running "
    "tasks as lost (default 30).",
    "GIRDER_WORKER_PUBLISH_WINDOW": "On RabbitMQ: how many of a client's messages per connection may await "
    "RabbitMQ's confirm before a publish waits (default 64; 1 makes every publish wait). A worker waits for each.",
    "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": "JSON object of kombu transport options set over girder-worker's "
    "(e.g. Redis's visibility_timeout); worker and clients should share it.",
    "GIRDER_WORKER_ALLOW_PYTHON_MODE": "true lets girder_worker.run execute python-mode scripts taken "
    "from messages (default false).",
    "GIRDER_WORKER_MAX_MESSAGE_BYTES": "Largest task message body in bytes a client sends and a worker "
    "runs (default 16777216, RabbitMQ 4's own limit); 0 means no limit.",
    "GIRDER_WORKER_LOCAL_PATHS": "Directories (separated by ':') that girder_worker.run's local bindings and "
    "file:// URLs may read and write; unset (the default): local bindings are refused.",
    "GIRDER_WORKER_HTTP_ALLOWED_HOSTS": "Comma-separated host names that http bindings may reach (*.example.org "
    "for its subdomains); unset (the default): any host.",
    "GIRDER_WORKER_MAX_DATA_BYTES": "Most bytes an analysis input binding fetches, and the memory budget of table "
    "and tree conversions (default 67108864).",
    "GIRDER_WORKER_PREFETCH": "off (default): a worker takes a task only when a process is free; a number N: "
    "it reserves up to N tasks per process ahead, as Celery's worker_prefetch_multiplier.",
    "GIRDER_WORKER_DOCKER_RUN_OPTIONS": "JSON object of Docker SDK containers.run options merged into every "
    "docker_run (under the caller's); the site's own: never checked by the docker_run policy.",
    "GIRDER_WORKER_DOCKER_ALLOW_OPTIONS": "Comma-separated Docker run options a docker_run message may set beyond "
    "the ordinary ones (environment, user, shm_size, mem_limit, ...), e.g. network_mode or volumes (default: none).",
    "GIRDER_WORKER_DOCKER_HOST_PATHS": "Host directories (separated by ':', each optionally =ro) a docker_run "
    "message may bind-mount, besides the run's temporary volumes (default: none).",
    "GIRDER_WORKER_DOCKER_IMAGES": "Comma-separated glob patterns of the images docker_run may run (default: any).",
    "GIRDER_WORKER_JOB_GC_SCOPE": "In a Girder server: comma-separated token scopes added to the data read/write "
    "token that Girder transforms made in a request carry.",
    "GIRDER_WORKER_ACCEPT_COMPRESSION": "true lets a worker run compressed task messages (gzip, bzip2, lzma), "
    "inflated no further than GIRDER_WORKER_MAX_MESSAGE_BYTES (default false: refused).",
    "GIRDER_WORKER_CELERY_TASKS": "Comma-separated Celery built-in tasks (celery.*) a message may run on this "
    "worker (default: the canvas helpers celery.chord_unlock, celery.group, celery.chain, celery.chord, "
    "celery.map, celery.starmap, celery.chunks, celery.accumulate; celery.backend_cleanup is not among them).",
    "GIRDER_WORKER_METRICS_PORT": "TCP port on which a worker serves Prometheus metrics at /metrics (0: any free "
    "port, logged at start); unset (the default): no metrics. Needs pip install girder-worker-core[metrics].",
    "GIRDER_WORKER_METRICS_ADDRESS": "Address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for "
    "every interface).",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LEVELS = ("debug", "info", "warning", "error", "critical")
_EMBEDDED_POLL_SECONDS = 0.02


class ConfigError(Exception):
    """A configuration value girder-worker cannot use.

    Its message is one line that names the variable, the problem and the fix.
    """

    def __init__(self, variable: str, problem: str, fix: str) -> None:
        super().__init__(f"{variable}: {problem}; {fix}")
        self.variable = variable


@dataclass(frozen=True)
class Config:
    """The checked configuration: Celery settings plus girder-worker's own."""

    settings: dict[str, Any]
    data_dir: Path | None
    embedded: bool
    logging_level: str
    plugins: frozenset[str] | None
    strict_plugins: bool
    cancel_grace_period: float | None = 30.0
    api_url: str | None = None
    report_interval: float = 0.5
    report_retry_seconds: float = 600.0
    job_log_limit: int = 1_000_000
    allow_python_mode: bool = False
    max_message_bytes: int = 16 * 1024 * 1024
    prefetch_multiplier: int | None = None
    delivery: str = "at-least-once"
    max_deliveries: int = 2
    lease_seconds: float = 30.0
    local_paths: tuple[str, ...] = ()
    http_allowed_hosts: frozenset[str] | None = None
    max_data_bytes: int = 64 * 1024 * 1024
    accept_compression: bool = False
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    broker_max_retries: int | None = None
    strict_config: bool = False
    log_format: str = "text"
    celery_tasks: frozenset[str] = frozenset(
        {
            "celery.chord_unlock",
            "celery.group",
            "celery.chain",
            "celery.chord",
            "celery.map",
            "celery.starmap",
            "celery.chunks",
            "celery.accumulate",
        }
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"{env[name]!r} is not a boolean", "use true or false")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float, unit: str) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also false for nan
        raise ConfigError(name, f"{text!r} is not a number of {unit} >= {minimum:g}", f"use a number >= {minimum:g}")
    return value


def _api_url(env: Mapping[str, str]) -> str | None:
    url = env.get("GIRDER_WORKER_API_URL", "").strip()
    if url and not url.lower().startswith(("http://", "https://")):
        raise ConfigError(
            "GIRDER_WORKER_API_URL",
            f"{url!r} is not an http:// or https:// URL",
            "set it to Girder's API root as this worker reaches it, e.g. http://girder:8080/api/v1",
        )
    return url.rstrip("/") or None


DELIVERY_POLICIES = ("at-least-once", "at-most-once")


def _delivery(env: Mapping[str, str]) -> str:
    value = env.get("GIRDER_WORKER_DELIVERY", "").strip().lower() or DELIVERY_POLICIES[0]
    if value not in DELIVERY_POLICIES:
        raise ConfigError(
            "GIRDER_WORKER_DELIVERY", f"unknown delivery policy {value!r}", f"use {' or '.join(DELIVERY_POLICIES)}"
        )
    return value


def _prefetch(env: Mapping[str, str]) -> int | None:
    text = env.get("GIRDER_WORKER_PREFETCH", "").strip().lower()
    if text in ("", "off"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            "GIRDER_WORKER_PREFETCH",
            f"{env['GIRDER_WORKER_PREFETCH']!r} is neither off nor a whole number >= 1",
            "use off to take a task only for a free process, or N to reserve N tasks per process",
        )
    return int(text)


def _publish_window(env: Mapping[str, str]) -> int:
    text = env.get("GIRDER_WORKER_PUBLISH_WINDOW", "").strip()
    if not text:
        return DEFAULT_WINDOW
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(
            "GIRDER_WORKER_PUBLISH_WINDOW",
            f"{env['GIRDER_WORKER_PUBLISH_WINDOW']!r} is not a whole number >= 1",
            f"use 1 to make every publish wait for RabbitMQ's confirm, or more (default {DEFAULT_WINDOW})",
        )
    return int(text)


def _scheme(url: str) -> str:
    return url.partition("://")[0].partition("+")[0].lower() if "://" in url else ""


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/girder-worker``, or ``~/.local/share/girder-worker``."""
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "girder-worker"


#: The folders under the data directory, each private to the worker's user.
DATA_FOLDERS = (
    "broker",
    "broker/queue",
    "broker/control",
    "broker/processing",
    "results",
    "leases",
    "cancelled",
    "quarantine",
)


def _private_dir(path: Path, data_dir: Path, *, follow: bool = False) -> Path:
    """``path`` under the data directory, made 0700 if missing; refused when another
    user owns it or group or others may write it."""
    problem = dir_problem(path, follow=follow)
    if problem is not None:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = str(os.geteuid())
        raise ConfigError(
            "GIRDER_WORKER_DATA_DIR",
            f"the embedded broker's directory {problem}, so another user could queue tasks or read their "
            "messages there and the worker does not use it",
            f"if the files are this user's, run `chown -R {user} {data_dir} && chmod -R go-rwx {data_dir}`, "
            "else set GIRDER_WORKER_DATA_DIR to a directory of this user's own",
        )
    try:
        ensure_private_dir(path)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            "GIRDER_WORKER_DATA_DIR",
            f"cannot use {str(path)!r} as the data directory ({exc.strerror or exc})",
            "set it to a directory this user can write",
        ) from None
    return path


def embedded_settings(data_dir: Path, max_entry_bytes: int = 0) -> dict[str, Any]:
    """Celery settings for the broker and backend that need no server.

    Every folder is checked (:func:`_private_dir`); ``max_entry_bytes`` is the
    largest queue file the broker reads (0: any).
    """
    _private_dir(data_dir, data_dir, follow=True)
    folders = {name: _private_dir(data_dir / name, data_dir) for name in DATA_FOLDERS}
    return {
        "broker_url": "filesystem://",
        "broker_transport": "girder_worker.broker._embedded:Transport",
        "broker_transport_options": {
            "data_folder_in": str(folders["broker/queue"]),
            "data_folder_out": str(folders["broker/queue"]),
            "control_folder": str(folders["broker/control"]),
            "processing_folder": str(folders["broker/processing"]),
            "quarantine_folder": str(folders["quarantine"]),
            "max_entry_bytes": max_entry_bytes,
            "polling_interval": _EMBEDDED_POLL_SECONDS,
        },
        "result_backend": f"file://{folders['results']}",
    }


def _local_paths(env: Mapping[str, str]) -> tuple[str, ...]:
    text = env.get("GIRDER_WORKER_LOCAL_PATHS", "").strip()
    paths = []
    for given in (p.strip() for p in text.split(os.pathsep)):
        if not given:
            continue
        if not os.path.isabs(given) or ".." in Path(given).parts:
            raise ConfigError(
                "GIRDER_WORKER_LOCAL_PATHS",
                f"{given!r} is not an absolute path without '..'",
                "list absolute directories separated by ':', e.g. /srv/analysis/in:/srv/analysis/out",
            )
        real = os.path.realpath(given)
        if not os.path.isdir(real):
            raise ConfigError(
                "GIRDER_WORKER_LOCAL_PATHS",
                f"{given!r} is not a directory",
                "create it, or list only existing directories",
            )
        if real == os.sep:
            raise ConfigError(
                "GIRDER_WORKER_LOCAL_PATHS",
                f"{given!r} is the root directory, which would let local bindings read and write any file",
                "list the directories analyses need, e.g. /srv/analysis",
            )
        paths.append(real)
    return tuple(paths)


def _allowed_hosts(env: Mapping[str, str]) -> frozenset[str] | None:
    text = env.get("GIRDER_WORKER_HTTP_ALLOWED_HOSTS", "").strip()
    if not text or text == "*":
        return None
    hosts = set()
    bad = []
    for given in (h.strip().lower().rstrip(".") for h in text.split(",")):
        if given.startswith("[") and given.endswith("]"):  # an IPv6 address, as URLs write it
            given = given[1:-1]
        elif given.count(":") == 1:
            bad.append(given)  # host:port
        if not given or "/" in given or any(c.isspace() for c in given):
            bad.append(given)
        hosts.add(given)
    if bad:
        raise ConfigError(
            "GIRDER_WORKER_HTTP_ALLOWED_HOSTS",
            f"{bad[0]!r} is not a host name",
            "list host names separated by commas, e.g. data.example.org,*.example.net (no scheme, port or path)",
        )
    return frozenset(hosts)


def read_config(env: Mapping[str, str] | None = None) -> Config:
    """Read and check the configuration; raise :class:`ConfigError` on a bad value."""
    env = os.environ if env is None else env
    strict_config = _flag(env, "GIRDER_WORKER_STRICT_CONFIG")
    check_variables(env, strict=strict_config)
    settings: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "worker_consumer": "girder_worker.broker._consumer:Consumer",
        # How long a prefork worker waits for the result of a pool process that died
        # before it calls the task lost (Celery: 10 s); the delivery policy acts then.
        "worker_lost_wait": 1.0,
        # Celery 6's default, which also stops its warning at every lost connection: a
        # late-acknowledging task whose connection is gone is stopped, as its message is
        # delivered again anyway. Tasks acknowledged at start (girder-worker's) run on.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_always_eager": _flag(env, "GIRDER_WORKER_TASK_ALWAYS_EAGER"),
        # Clients see a running task STARTED (then PROGRESS), not PENDING; a task's
        # print() is output, not a warning.
        "task_track_started": True,
        "worker_redirect_stdouts_level": "INFO",
        **outage_settings(),
    }
    # Eager runs store their states too, so AsyncResult(id) and cancel() work as with a worker.
    settings["task_store_eager_result"] = settings["task_always_eager"]
    broker_max_retries = _max_retries(env)
    if broker_max_retries is not None:
        settings["broker_connection_max_retries"] = broker_max_retries

    broker = env.get("GIRDER_WORKER_BROKER", "").strip()
    backend = env.get("GIRDER_WORKER_BACKEND", "").strip()
    max_message_bytes = int(_number(env, "GIRDER_WORKER_MAX_MESSAGE_BYTES", 16 * 1024 * 1024, 0, "bytes"))
    data_dir: Path | None = None
    if broker:
        scheme = _scheme(broker)
        if scheme not in TRANSPORT_ALIASES:
            raise ConfigError(
                "GIRDER_WORKER_BROKER",
                f"unknown broker scheme {scheme or broker!r}",
                "use amqp://, redis:// or another kombu transport URL, or unset it for the embedded broker",
            )
        settings["broker_url"] = broker
        if broker.lower().startswith("redis://"):
            # kombu's Redis transport, which drops a queue item that is no task message
            # with one line instead of stopping (see girder_worker.broker._redis).
            settings["broker_transport"] = TRANSPORTS["redis"]
        elif scheme in RABBITMQ_SCHEMES:
            # kombu's AMQP transport, whose publishes RabbitMQ confirms through a window
            # (see girder_worker.broker._rabbitmq).
            settings["broker_transport"] = TRANSPORTS[scheme]
    else:
        data_dir = Path(env.get("GIRDER_WORKER_DATA_DIR") or default_data_dir(env))
        # A queue file holds the body base64-encoded, with the headers: room for both.
        entry_limit = 2 * max_message_bytes + 1024 * 1024 if max_message_bytes else 0
        settings.update(embedded_settings(data_dir, entry_limit))
    try:
        transport_options = broker_transport_options(_scheme(broker), env)
    except ValueError as exc:
        raise ConfigError(
            "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS", str(exc), 'use a JSON object, e.g. {"visibility_timeout": 43200}'
        ) from None
    if settings.get("broker_transport") in RABBITMQ_TRANSPORTS:
        window = transport_options.setdefault(WINDOW_OPTION, _publish_window(env))
        if type(window) is not int or window < 1:  # given in the transport options' JSON
            raise ConfigError(
                "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS",
                f"{WINDOW_OPTION} is {window!r}, not a whole number >= 1",
                "leave it out and set GIRDER_WORKER_PUBLISH_WINDOW instead",
            )
    settings["broker_transport_options"] = {**settings.get("broker_transport_options", {}), **transport_options}

    if backend:
        if _scheme(backend) not in BACKEND_ALIASES:
            raise ConfigError(
                "GIRDER_WORKER_BACKEND",
                f"unknown result backend scheme {_scheme(backend) or backend!r}",
                "use redis://, rpc://, file:// or another Celery result backend URL",
            )
        settings["result_backend"] = backend
    elif broker:
        settings["result_backend"] = broker if _scheme(broker) in ("redis", "rediss") else "rpc://"
    settings.update(backend_outage_settings(str(settings.get("result_backend", ""))))

    level = env.get("GIRDER_WORKER_LOGGING_LEVEL", "info").strip().lower() or "info"
    if level not in _LEVELS:
        raise ConfigError("GIRDER_WORKER_LOGGING_LEVEL", f"unknown level {level!r}", f"use one of {', '.join(_LEVELS)}")

    log_format = env.get("GIRDER_WORKER_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise ConfigError("GIRDER_WORKER_LOG_FORMAT", f"unknown log format {log_format!r}", "use text or json")

    names = env.get("GIRDER_WORKER_PLUGINS", "").strip()
    plugins = frozenset(n.strip() for n in names.split(",") if n.strip()) if names else None

    grace_text = env.get("GIRDER_WORKER_CANCEL_GRACE_PERIOD", "30").strip().lower() or "30"
    grace: float | None = None
    if grace_text != "never":
        try:
            grace = float(grace_text)
        except ValueError:
            grace = -1.0
        if not grace >= 0:
            raise ConfigError(
                "GIRDER_WORKER_CANCEL_GRACE_PERIOD",
                f"{grace_text!r} is not a number of seconds",
                "use a number >= 0, or never",
            )

    prefetch = _prefetch(env)
    if prefetch is None:
        # Celery lowers the prefetch count after a lost connection and raises it back
        # to concurrency x multiplier; fair dispatch manages it instead.
        settings["worker_enable_prefetch_count_reduction"] = False
    else:
        settings["worker_prefetch_multiplier"] = prefetch

    return Config(
        settings=settings,
        data_dir=data_dir,
        embedded=not broker,
        logging_level=level,
        plugins=plugins,
        strict_plugins=_flag(env, "GIRDER_WORKER_STRICT_PLUGINS"),
        broker_max_retries=broker_max_retries,
        strict_config=strict_config,
        cancel_grace_period=grace,
        api_url=_api_url(env),
        report_interval=_number(env, "GIRDER_WORKER_REPORT_INTERVAL", 0.5, 0.0, "seconds"),
        report_retry_seconds=_number(env, "GIRDER_WORKER_REPORT_RETRY_SECONDS", 600.0, 0.0, "seconds"),
        job_log_limit=int(_number(env, "GIRDER_WORKER_JOB_LOG_LIMIT", 1_000_000, 10_000, "characters")),
        allow_python_mode=_flag(env, "GIRDER_WORKER_ALLOW_PYTHON_MODE"),
        max_message_bytes=max_message_bytes,
        prefetch_multiplier=prefetch,
        delivery=_delivery(env),
        max_deliveries=int(_number(env, "GIRDER_WORKER_MAX_DELIVERIES", 2, 1, "deliveries")),
        lease_seconds=_number(env, "GIRDER_WORKER_LEASE_SECONDS", 30.0, 1.0, "seconds"),
        local_paths=_local_paths(env),
        http_allowed_hosts=_allowed_hosts(env),
        max_data_bytes=int(_number(env, "GIRDER_WORKER_MAX_DATA_BYTES", 64 * 1024 * 1024, 1024, "bytes")),
        accept_compression=_flag(env, "GIRDER_WORKER_ACCEPT_COMPRESSION"),
        metrics_port=_metrics_port(env),
        metrics_address=_metrics_address(env),
        log_format=log_format,
        **_celery_tasks(env),
    )


def _metrics_port(env: Mapping[str, str]) -> int | None:
    text = env.get("GIRDER_WORKER_METRICS_PORT", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 65535:
        raise ConfigError(
            "GIRDER_WORKER_METRICS_PORT",
            f"{text!r} is not a TCP port number",
            "use a number from 1 to 65535 (0: any free port), or unset it to serve no metrics",
        )
    return int(text)


def _metrics_address(env: Mapping[str, str]) -> str:
    address = env.get("GIRDER_WORKER_METRICS_ADDRESS", "").strip() or "127.0.0.1"
    if any(c.isspace() or c in "/[]" for c in address):
        raise ConfigError(
            "GIRDER_WORKER_METRICS_ADDRESS",
            f"{address!r} is not an address to listen on",
            "use an IP address or host name, e.g. 127.0.0.1 or 0.0.0.0",
        )
    return address


def _celery_tasks(env: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """``celery_tasks`` when GIRDER_WORKER_CELERY_TASKS sets it, else nothing (the default)."""
    text = env.get("GIRDER_WORKER_CELERY_TASKS")
    if text is None:
        return {}
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    wrong = sorted(name for name in names if not name.startswith("celery."))
    if wrong:
        raise ConfigError(
            "GIRDER_WORKER_CELERY_TASKS",
            f"{wrong[0]!r} is not a Celery built-in task",
            "list names that begin with celery., such as celery.backend_cleanup",
        )
    return {"celery_tasks": names}


def _max_retries(env: Mapping[str, str]) -> int | None:
    text = env.get("GIRDER_WORKER_BROKER_MAX_RETRIES", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ConfigError(
            "GIRDER_WORKER_BROKER_MAX_RETRIES",
            f"{text!r} is not a whole number >= 0",
            "use a number of retries, or unset it to retry for ever",
        )
    return int(text)


def check_variables(env: Mapping[str, str], *, strict: bool = False) -> list[str]:
    """Warn about each ``GIRDER_WORKER_*`` variable in ``env`` that :data:`VARIABLES` does not list.

    Each unknown name gets one warning line with the closest known name (a typo
    such as ``GIRDER_WORKER_BROKR`` would otherwise go unnoticed: the worker would
    run on the embedded broker). With ``strict``, the first one raises
    :class:`ConfigError` instead. Returns the warning lines.
    """
    prefix = "GIRDER_WORKER_"
    # Read now: the table is the one list of every variable. Names are compared without
    # their common prefix, which would make any two look alike.
    known = [name.removeprefix(prefix) for name in VARIABLES]
    lines = []
    for name in sorted(n for n in env if n.startswith(prefix) and n not in VARIABLES):
        close = closest(name.removeprefix(prefix), known)
        hint = f" (did you mean {prefix}{close}?)" if close else ""
        if strict:
            raise ConfigError(
                name,
                f"unknown girder-worker variable{hint}",
                "rename or unset it (GIRDER_WORKER_STRICT_CONFIG=true makes unknown variables errors)",
            )
        line = (
            f"{name}: unknown girder-worker variable, ignored{hint}; rename or unset it "
            "(girder-worker --help lists the variables)"
        )
        logger.warning("%s", line)
        lines.append(line)
    return lines

"""What makes a task message one the worker can run, checked before it runs.

A Celery task message (protocol 2) has a ``task`` and an ``id`` header and a JSON
body ``[args, kwargs, embed]``. The consumer (:mod:`._consumer`) checks each one,
cheapest first: its headers, its size (``GIRDER_WORKER_MAX_MESSAGE_BYTES``), its
task name, its body's shape, and whether its arguments fit the task's signature.
A check that fails gives a :class:`Rejection`: one line that says what is wrong
and how to fix it, never the body or the headers (they carry Girder tokens).

The same size limit holds for clients: a girder-worker app's producer refuses to
send a larger task message and raises :class:`MessageTooLargeError` instead, so a
message is never lost to a broker's own limit (RabbitMQ closes the channel).

Example::

    >>> check_body([[1, 2], {"x": 1}, None])
    >>> check_body({"x": 1}).problem
    'the body is a JSON object, not the [args, kwargs, embed] array of a Celery task message'
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import current_task
from celery.app import amqp as celery_amqp
from celery.exceptions import InvalidTaskError
from kombu.messaging import Producer as KombuProducer
from kombu.pools import ProducerPool
from kombu.serialization import dumps
from kombu.utils.objects import cached_property

from ..monitoring._metrics import SENT_HEADER
from ._outages import Connection

__all__ = [
    "AMQP",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MessageTooLargeError",
    "Rejection",
    "check_arguments",
    "check_body",
    "check_headers",
    "check_size",
    "check_task_id",
    "max_message_bytes",
]

#: RabbitMQ 4's own default limit (``max_message_size``): a larger message would
#: make it close the publisher's channel. Redis and the embedded broker take more.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_BODY_FIX = "publish it with Celery's send_task or apply_async and serializer='json'"

#: Celery makes a run's request (``task.request``) from the message's headers and the
#: body's embed; the worker keeps its own state of a run there, under names with this
#: prefix (the cancel flag, the lease, the refusal, the Girder job, ...). A message
#: that sets one would pose as that state: make the run skip its cancel flag and
#: transforms, claim a lease for another worker, or end as the message says.
_WORKER_PREFIX = "girder_worker_"
#: The one header with that prefix a client sends: when it published the message.
_CLIENT_HEADERS = frozenset({SENT_HEADER})
_WORKER_FIX = "drop it: only the worker sets girder_worker_* names on a run"


def _worker_name(names: Any, where: str) -> Rejection | None:
    for name in names:
        if isinstance(name, str) and name.startswith(_WORKER_PREFIX) and name not in _CLIENT_HEADERS:
            return Rejection(f"its {name!r} {where} is a name the worker keeps for its own state of a run", _WORKER_FIX)
    return None


_JSON_TYPES = {dict: "object", list: "array", tuple: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class Rejection:
    """Why a task message cannot run: ``problem`` and ``fix`` complete the log line

    ``rejected task NAME[ID]: PROBLEM; the message was discarded (FIX)``; ``error``
    is the exception its result holds.
    """

    problem: str
    fix: str
    error: type[Exception] = InvalidTaskError
    error_argument: str | None = None  # default: the problem

    def exception(self) -> Exception:
        return self.error(self.problem if self.error_argument is None else self.error_argument)


class MessageTooLargeError(ValueError):
    """A task message larger than ``GIRDER_WORKER_MAX_MESSAGE_BYTES``; nothing was sent."""

    def __init__(self, task: str, size: int, limit: int) -> None:
        super().__init__(
            f"task {task}: the message is {size:,} bytes, more than GIRDER_WORKER_MAX_MESSAGE_BYTES "
            f"({limit:,}); nothing was sent (pass large data as a Girder file or URL, or raise the "
            "limit on the clients and the workers alike)"
        )
        self.task = task
        self.size = size
        self.limit = limit


def max_message_bytes(app: Any) -> int:
    """The app's size limit of task messages in bytes; 0 means none."""
    config = getattr(app, "girder_worker_config", None)
    return int(getattr(config, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES))


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "number" if isinstance(value, int | float) else type(value).__name__)


def _is_limit(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)


#: The longest task id in UTF-8 bytes: the embedded broker and the file result
#: backend name files after it, with prefixes, within a file name's 255 bytes.
MAX_TASK_ID_BYTES = 200
_UNSAFE_ID = re.compile(r"^\.|[/\x00-\x1f\x7f\ud800-\udfff]")


def check_task_id(task_id: str) -> Rejection | None:
    """A task id that is no safe file name (``a/b``, ``..``, control characters, too long).

    Every broker refuses it alike, though only the embedded one stores files by it.
    """
    unsafe = _UNSAFE_ID.search(task_id)
    if unsafe is None and (len(task_id) * 4 <= MAX_TASK_ID_BYTES or len(task_id.encode()) <= MAX_TASK_ID_BYTES):
        return None
    if unsafe is None:
        problem = f"is longer than {MAX_TASK_ID_BYTES} bytes"
    elif unsafe.group() in "/.":
        problem = "contains '/' or starts with '.'"
    else:
        problem = "contains control characters"
    return Rejection(
        f"its 'id' header {problem}, so it is not a safe task id", "give tasks Celery's own ids (uuid4), or plain names"
    )


def check_headers(headers: Mapping[str, Any]) -> Rejection | None:
    """The ``task`` and ``id`` headers every protocol-2 message needs, and the optional
    ones a worker would fail on (a bad ``timelimit`` stops a plain Celery worker)."""
    if not isinstance(headers.get("task"), str) or not headers["task"]:
        return Rejection(f"its 'task' header is a JSON {_json_type(headers.get('task'))}, not a task name", _BODY_FIX)
    if not isinstance(headers.get("id"), str) or not headers["id"]:
        return Rejection("it has no 'id' header (a task id)", _BODY_FIX)
    if (rejection := check_task_id(headers["id"])) is not None:
        return rejection
    for name in ("shadow", "root_id", "parent_id", "group"):
        if not isinstance(headers.get(name), str | None):
            return Rejection(f"its {name!r} header is a JSON {_json_type(headers[name])}, not a string", _BODY_FIX)
    timelimit = headers.get("timelimit")
    if timelimit is not None and not (
        isinstance(timelimit, list | tuple) and len(timelimit) == 2 and all(map(_is_limit, timelimit))
    ):
        return Rejection("its 'timelimit' header is not [hard, soft] seconds (numbers or null)", _BODY_FIX)
    retries = headers.get("retries")
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
        return Rejection("its 'retries' header is not a whole number >= 0", _BODY_FIX)
    return _worker_name(headers, "header")


def check_size(body: bytes | str, limit: int) -> Rejection | None:
    """A body larger than ``limit`` bytes (0: no limit)."""
    if limit and len(body) > limit:
        return Rejection(
            f"its body is {len(body):,} bytes, more than GIRDER_WORKER_MAX_MESSAGE_BYTES ({limit:,})",
            "pass large data as a Girder file or URL, or raise the limit on the clients and the workers alike",
        )
    return None


def check_body(payload: Any) -> Rejection | None:
    """A decoded body that is not ``[args, kwargs, embed]`` (or Celery's hybrid ``{"args": ...}``)."""
    if isinstance(payload, dict) and "args" in payload:  # the hybrid form Celery still reads
        items = [payload["args"], payload.get("kwargs", {}), None]
    elif isinstance(payload, list | tuple) and len(payload) == 3:
        items = list(payload)
    elif isinstance(payload, list | tuple):
        return Rejection(
            f"the body is a JSON array of {len(payload)} items, not the [args, kwargs, embed] of a Celery task message",
            _BODY_FIX,
        )
    else:
        return Rejection(
            f"the body is a JSON {_json_type(payload)}, not the [args, kwargs, embed] array of a Celery task message",
            _BODY_FIX,
        )
    args, kwargs, embed = items
    for name, value, wanted, kinds in (
        ("args are", args, "an array", (list, tuple)),
        ("kwargs are", kwargs, "an object", (dict,)),
        ("embed is", embed, "an object or null", (dict, type(None))),
    ):
        if not isinstance(value, kinds):
            return Rejection(f"its {name} a JSON {_json_type(value)}, not {wanted}", _BODY_FIX)
    return _worker_name(embed or {}, "embed key")


@dataclass(frozen=True)
class Signature:
    """A task's signature, with the positional counts that need no ``bind`` to check."""

    signature: inspect.Signature
    least: int  # positional arguments without a default
    most: float  # positional parameters (inf with *args)
    keywords_only_positional: bool  # no keyword-only or **kwargs parameter is required

    @classmethod
    def of(cls, task: Any) -> Signature | None:
        """``task.run``'s signature, or None when it must not or cannot be checked."""
        if not getattr(task, "typing", True):  # the task asked Celery not to check its arguments
            return None
        try:
            signature = inspect.signature(task.run)
        except (TypeError, ValueError):  # no signature Python can read: let the task decide
            return None
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = list(signature.parameters.values())
        kinds = [p.kind for p in params]
        return cls(
            signature,
            least=sum(1 for p in params if p.kind in positional and p.default is p.empty),
            most=float("inf") if inspect.Parameter.VAR_POSITIONAL in kinds else sum(k in positional for k in kinds),
            keywords_only_positional=not any(
                p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is p.empty for p in params
            ),
        )

    def mismatch(self, args: Any, kwargs: Mapping[str, Any]) -> str | None:
        """Why ``args`` and ``kwargs`` do not fit, or None when they do."""
        if not kwargs and self.keywords_only_positional and self.least <= len(args) <= self.most:
            return None  # the common case, without the cost of bind()
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            return str(exc)
        return None


def _given(args: Any, kwargs: Mapping[str, Any]) -> str:
    count = len(args)
    parts = [f"{count} positional argument{'' if count == 1 else 's'}"] if count or not kwargs else []
    if kwargs:
        names = [repr(str(k)[:40]) for k in list(kwargs)[:5]]
        more = ", ..." if len(kwargs) > 5 else ""
        parts.append(f"keyword argument{'' if len(kwargs) == 1 else 's'} {', '.join(names)}{more}")
    return " and ".join(parts)


def check_arguments(
    task: Any, args: Any, kwargs: Mapping[str, Any], cache: dict[Any, Signature | None]
) -> Rejection | None:
    """Arguments that do not fit ``task``'s signature, read once per task into ``cache``."""
    try:
        signature = cache[task]
    except KeyError:
        signature = cache[task] = Signature.of(task)
    if signature is None:
        return None
    problem = signature.mismatch(args, kwargs)
    if problem is None:
        return None
    shown = f"{task.name.rpartition('.')[2]}{signature.signature}"
    return Rejection(
        f"called with {_given(args, kwargs)}, but its signature is {shown[:200]}: {problem}",
        "send it with the arguments its signature names",
        TypeError,
    )


def fail_job(app: Any, headers: Mapping[str, Any], text: str, wait: bool = False) -> None:
    """End the Girder job of the message with ``headers`` ERROR, with ``text`` in its log.

    ``wait``: try to send it now, in this thread (a client may exit right after).
    """
    from .._outcome import of_refused
    from ..girder._reporter import reporter
    from ..girder._signals import end_job_of

    channel = end_job_of(headers, app, of_refused(text))
    if channel is not None and wait:
        reporter().send(channel, timeout=channel.settings.timeout, wait=True)


def serialize_within(headers: Mapping[str, Any], body: Any, serializer: str, limit: int) -> tuple[str, str, bytes]:
    """The task message ``body`` serialized: ``(content_type, content_encoding, data)``;
    raise :class:`MessageTooLargeError` when ``data`` is over ``limit`` bytes."""
    content_type, encoding, data = dumps(body, serializer=serializer)
    encoding = encoding or "utf-8"
    if isinstance(data, str):
        data = data.encode(encoding)
    if len(data) > limit:
        raise MessageTooLargeError(f"{headers.get('task', '?')}[{headers.get('id', '?')}]", len(data), limit)
    return content_type, encoding, data


class LimitedProducer(KombuProducer):  # type: ignore[misc]
    """kombu's producer, which refuses a task message larger than :attr:`max_message_bytes`.

    The body is serialized here, once, instead of in ``Producer.publish``: its size
    costs a ``len()``.
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    app: Any = None

    def publish(self, body: Any, *args: Any, **kwargs: Any) -> Any:
        headers: Any = kwargs.get("headers")
        if self.max_message_bytes and "task" in (headers or ()) and not kwargs.get("content_type"):
            serializer = str(kwargs.get("serializer") or self.serializer or "json")
            try:
                content_type, encoding, body = serialize_within(headers, body, serializer, self.max_message_bytes)
            except MessageTooLargeError as exc:
                if "jobInfoSpec" in headers:  # its job waits for this message: it will not come
                    fail_job(self.app, headers, f"girder-worker: {exc}", wait=True)
                raise
            kwargs["content_type"], kwargs["content_encoding"] = content_type, encoding
        return super().publish(body, *args, **kwargs)


def _creates_a_girder_job(message: Any, options: Mapping[str, Any]) -> bool:
    """Whether ``before_task_publish`` will create a Girder job (POST /job) for ``message``."""
    places = (message.headers, options.get("headers") or {}, message.properties)
    if any("jobInfoSpec" in place for place in places[:2]):
        return False
    if any("girder_client_token" in place for place in places):
        return True
    parent = current_task.request if current_task else None  # a task's children inherit its token
    return bool(getattr(parent, "girder_client_token", None))


class AMQP(celery_amqp.AMQP):  # type: ignore[misc]
    """Celery's messaging of a girder-worker app, whose producers keep the size limit."""

    _producer_pool: ProducerPool | None
    Connection = Connection  # names girder-worker's transports by their URL scheme

    @cached_property
    def Producer(self) -> type[LimitedProducer]:  # noqa: N802  (Celery's name)
        return type("Producer", (LimitedProducer,), {"max_message_bytes": max_message_bytes(self.app), "app": self.app})

    @property
    def producer_pool(self) -> ProducerPool:
        # Celery takes kombu's process-wide pool of plain producers, shared by every
        # app on the same broker; this app's own pool makes its own producers.
        if self._producer_pool is None:
            self._producer_pool = ProducerPool(self.app.pool, limit=self.app.pool.limit, Producer=self.Producer)
        return self._producer_pool

    publisher_pool = producer_pool

    def _create_task_sender(self) -> Any:
        send = super()._create_task_sender()
        limit = max_message_bytes(self.app)
        default_serializer = self.app.conf.task_serializer

        def send_task_message(producer: Any, name: str, message: Any, **options: Any) -> Any:
            # The producer checks every task message, after the before_task_publish
            # receivers; one that creates a Girder job must not run for a message that
            # will not be sent, so those messages are measured before it as well.
            if limit and _creates_a_girder_job(message, options):
                serializer = options.get("serializer") or default_serializer
                serialize_within({**message.headers, "task": name}, message.body, serializer, limit)
            return send(producer, name, message, **options)

        return send_task_message

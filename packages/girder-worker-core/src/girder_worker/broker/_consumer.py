"""The worker's message consumer: bad messages get one log line without secrets.

Celery logs a rejected message with its whole body and headers, over many lines;
girder-worker's headers carry Girder tokens. Here every message the worker cannot
run (see :mod:`._message_checks`) is discarded with one line that names the task,
its id, the problem and the fix::

    rejected task gwtest.add[0f3c...]: called with 3 positional arguments, but its
    signature is add(x, y): too many positional arguments; the message was
    discarded (send it with the arguments its signature names)

(one line in the log). Its result becomes a failure, Celery's ``task_rejected``
(or ``task_unknown``) signal is sent, the Girder job its ``jobInfoSpec`` header
names ends ERROR with the same line in its log, and the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from celery import signals
from celery.exceptions import NotRegistered
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.exceptions import ContentDisallowed

from girder_worker_utils.wire import RefusedObject, restore

from .._celery_internals import active_requests, event_dispatcher, reserved_requests, task_ready
from ..monitoring import _metrics
from ._compression import CompressionRefused
from ._message_checks import (
    Rejection,
    Signature,
    check_arguments,
    check_body,
    check_headers,
    check_size,
    fail_job,
    max_message_bytes,
)

__all__ = ["Consumer"]

logger = logging.getLogger("girder_worker.worker")

_NOT_A_TASK_FIX = "publish tasks with Celery's send_task or apply_async"
_MAX_PROBLEM = 500


def _task_ref(headers: Any) -> str:
    headers = headers if isinstance(headers, dict) else {}
    return f"{headers.get('task', '?')}[{headers.get('id', '?')}]"


def _forget_request(headers: Any) -> None:
    """Take the request of a message that failed half-way out of the worker's books,
    where it would hold a process slot for ever."""
    task_id = headers.get("id") if isinstance(headers, dict) else None
    for request in [*reserved_requests(), *active_requests()]:
        if request.id == task_id:
            task_ready(request)


_REFUSED_FIX = (
    "a task message may carry JSON values and the transform classes of the plugins the worker loads; "
    "see the 'Migrating from girder_worker 5.x' page"
)


def _refused_object(exc: BaseException) -> RefusedObject | None:
    """The allow-list's refusal inside ``exc`` (kombu wraps decoder errors in DecodeError)."""
    for candidate in (exc, exc.__cause__, *getattr(exc, "args", ())[:1]):
        if isinstance(candidate, RefusedObject):
            return candidate
    return None


def _refused(exc: RefusedObject, place: str) -> Rejection:
    return Rejection(f"{place} names {exc}; nothing was imported or constructed", _REFUSED_FIX)


def _check_hooks(headers: dict[str, Any]) -> Rejection | None:
    """``girder_result_hooks`` the worker could not restore (they run after the task)."""
    hooks = headers.get("girder_result_hooks")
    if hooks is None:
        return None
    if not isinstance(hooks, list):
        return Rejection("its 'girder_result_hooks' header is not a list", _REFUSED_FIX)
    try:
        for hook in hooks:
            restore(hook)
    except RefusedObject as exc:
        return _refused(exc, "its 'girder_result_hooks' header")
    return None


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer, which checks each task message before its task sees it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_message_bytes = max_message_bytes(self.app)
        config = getattr(self.app, "girder_worker_config", None)
        self._celery_tasks: frozenset[str] = getattr(config, "celery_tasks", frozenset())
        self._signatures: dict[Any, Signature | None] = {}

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        celery_handler = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            headers = message.headers
            if isinstance(headers, dict) and "task" in headers:  # protocol 2
                rejection = self._check(message, headers)
                if rejection is not None:
                    return self._discard(message, headers, rejection)
            else:  # protocol 1 (the task in the body), or no task message at all
                return self._refuse_headerless(message)
            try:
                return celery_handler(message)
            except Exception as exc:
                # Celery treats an error here as unrecoverable and stops the worker; a
                # message that causes one before it is acknowledged is a bad message.
                if message.acknowledged:
                    raise
                _forget_request(headers)
                rejection = Rejection(f"the worker cannot read it ({type(exc).__name__}: {exc})", _NOT_A_TASK_FIX)
                return self._discard(message, headers, rejection)

        return on_task_received

    def _refuse_headerless(self, message: Any) -> None:
        """A message without a ``task`` header: Celery's protocol 1 is refused, whole.

        Celery 3 wrote the task's name, id and options into the body; every client of
        Celery 4 and later (the original girder-worker and Girder included) writes
        protocol 2. Refusing it here keeps one set of checks, all of them on headers.
        """
        headers = message.headers if isinstance(message.headers, dict) else {}
        rejection = check_size(message.body, self._max_message_bytes)
        if rejection is not None:
            return self._discard(message, headers, rejection)
        try:
            payload = message.payload
        except Exception as exc:
            return self.on_decode_error(message, exc)
        if not (isinstance(payload, dict) and "task" in payload):
            return self.on_unknown_message(payload, message)
        named = {key: payload.get(key) for key in ("task", "id")}
        named = {key: value for key, value in named.items() if isinstance(value, str) and value}
        rejection = Rejection(
            "it is a Celery protocol 1 message (the task named in its body), which this worker does not run",
            "publish it with Celery 4 or later (task_protocol 2, the default)",
        )
        return self._discard(message, {**headers, **named}, rejection)

    def _check(self, message: Any, headers: dict[str, Any]) -> Rejection | None:
        rejection = check_headers(headers) or check_size(message.body, self._max_message_bytes)
        if rejection is not None:
            return rejection
        name = headers["task"]
        if name.startswith("celery.") and name not in self._celery_tasks:
            return Rejection(
                "it names a Celery built-in task that this worker does not run for a message",
                f"list it in GIRDER_WORKER_CELERY_TASKS on the workers that should run it "
                f"(they run {', '.join(sorted(self._celery_tasks)) or 'none'})",
            )
        if name not in self.strategies:
            return None  # an unknown task goes to on_unknown_task
        try:
            payload = message.payload  # decoded once: Celery's strategy reads the same cache
        except ContentDisallowed:
            return None  # on_invalid_task says it
        except Exception as exc:
            refused = _refused_object(exc)
            if refused is not None:
                return _refused(refused, "its body")
            return Rejection(f"its body is not valid JSON ({exc})", "publish it with serializer='json'")
        rejection = check_body(payload) or _check_hooks(headers)
        if rejection is not None:
            return rejection
        if isinstance(payload, dict):
            args, kwargs = payload["args"], payload.get("kwargs", {})
        else:
            args, kwargs = payload[0], payload[1]
        return check_arguments(self.app.tasks[headers["task"]], args, kwargs, self._signatures)

    def _discard(self, message: Any, headers: Any, rejection: Rejection, signal: bool = True) -> None:
        """Log ``rejection``, drop the message and fail its result and its Girder job."""
        problem = " ".join(rejection.problem.split())[:_MAX_PROBLEM]  # one line, whatever an exception said
        line = f"rejected task {_task_ref(headers)}: {problem}; the message was discarded ({rejection.fix})"
        logger.error("%s", line)
        _metrics.message_refused(headers)
        message.reject_log_error(logger, self.connection_errors)
        exc = rejection.exception()
        headers = headers if isinstance(headers, dict) else {}
        task_id = headers.get("id")
        if isinstance(task_id, str) and task_id:
            self._fail_result(message, headers, task_id, exc)
        if signal:
            signals.task_rejected.send(sender=self, message=message, exc=exc)
        if "jobInfoSpec" in headers:
            fail_job(self.app, headers, f"girder-worker: {self.hostname} {line}")

    def _fail_result(self, message: Any, headers: dict[str, Any], task_id: str, exc: Exception) -> None:
        request = SimpleNamespace(
            id=task_id,
            name=headers.get("task"),
            task=headers.get("task"),
            chord=None,
            errbacks=None,
            root_id=headers.get("root_id"),
            parent_id=headers.get("parent_id"),
            correlation_id=message.properties.get("correlation_id"),
            reply_to=message.properties.get("reply_to"),
            delivery_info=message.delivery_info,
        )
        try:
            self.app.backend.mark_as_failure(task_id, exc, request=request)
        except Exception as error:  # the result backend is away: the log line above stays the record
            logger.warning("could not store the failure of task %s: %s", _task_ref(headers), error)
        dispatcher = event_dispatcher(self)
        if dispatcher:
            dispatcher.send("task-failed", uuid=task_id, exception=repr(exc))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        if "task" not in headers:  # protocol 1: the name and id are in the body, decoded already
            payload = message.payload
            headers = {**headers, "task": payload.get("task"), "id": payload.get("id")}
        name = headers.get("task")
        rejection = Rejection(
            "this worker has no task of that name",
            "install the plugin that has it where the worker runs; `girder-worker plugins` lists the plugins "
            "the worker loads and their tasks",
            NotRegistered,
            str(name),  # NotRegistered('the.name'), as Celery stores it
        )
        # Its Girder job is told by the task_unknown receiver in girder._signals.
        self._discard(message, {k: v for k, v in headers.items() if k != "jobInfoSpec"}, rejection, signal=False)
        signals.task_unknown.send(sender=self, message=message, exc=exc, name=name, id=headers.get("id"))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if isinstance(exc, ContentDisallowed):
            rejection = Rejection(
                f"content type {message.content_type!r} is not accepted, only JSON is",
                "publish it with serializer='json'",
            )
        else:
            rejection = Rejection(str(exc), _NOT_A_TASK_FIX)
        self._discard(message, message.headers, rejection)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        rejection = Rejection(
            f"it has no 'task' header, so it is not a Celery task message (content type {message.content_type!r}, "
            f"routing key {(message.delivery_info or {}).get('routing_key')!r})",
            _NOT_A_TASK_FIX,
        )
        self._discard(message, message.headers, rejection)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if isinstance(exc, CompressionRefused):
            fix = "publish it uncompressed, or let the workers accept it"
            return self._discard(message, message.headers, Rejection(str(exc), fix))
        rejection = Rejection(
            f"its body cannot be decoded as {message.content_type!r} (encoding {message.content_encoding!r}): {exc}",
            "publish it with serializer='json'",
        )
        self._discard(message, message.headers, rejection)

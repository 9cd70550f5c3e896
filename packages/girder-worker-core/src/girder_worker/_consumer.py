"""The worker's message consumer: bad messages get one log line without secrets.

Celery logs a rejected message with its whole body and headers, over many lines;
girder-worker's headers carry Girder tokens, so here each rejection is one line
that names the task, its id, the problem and the fix, and the worker goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.exceptions import ContentDisallowed

__all__ = ["Consumer"]

logger = logging.getLogger("girder_worker.worker")


def _task_ref(message: Any) -> str:
    headers = message.headers or {}
    return f"{headers.get('task', '?')}[{headers.get('id', '?')}]"


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer with one-line, secret-free reports of rejected messages."""

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if isinstance(exc, ContentDisallowed):
            logger.error(
                "rejected task %s: content type %r is not accepted, only JSON is; "
                "the message was discarded (publish it with serializer='json')",
                _task_ref(message),
                message.content_type,
            )
        else:
            logger.error("rejected task %s: %s; the message was discarded", _task_ref(message), exc)
        message.reject_log_error(logger, self.connection_errors)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        logger.warning(
            "discarded a message that is not a Celery task (content type %r, routing key %r)",
            message.content_type,
            (message.delivery_info or {}).get("routing_key"),
        )
        message.reject_log_error(logger, self.connection_errors)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        logger.error(
            "discarded message %s that cannot be decoded (content type %r, encoding %r): %s",
            _task_ref(message),
            message.content_type,
            message.content_encoding,
            exc,
        )
        message.ack()

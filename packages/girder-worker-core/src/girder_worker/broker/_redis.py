"""kombu's Redis transport, which survives what a stranger pushes onto a queue.

Anyone who can write to the broker's Redis can ``LPUSH`` anything onto a queue's
list, bypassing every publisher: bytes that are not JSON, or JSON that is not a
kombu envelope (``[1, 2, 3]``, ``{}``). kombu reads such an item inside the event
loop, and the error stopped the worker. Here an item the transport cannot make a
message of is logged as one line (its queue, what was wrong, its first bytes,
escaped) and dropped, and the worker goes on.

The event loop's path relies on a private method of kombu's Redis channel,
``Channel._brpop_read(**options)``, which pops one item with ``BRPOP``, decodes its
JSON and builds the message; any error of the item's making surfaces from that
call. Its override here is one line into
``girder_worker._celery_internals.read_redis_item``, where that reliance is
written down and tested. ``Channel._get`` (the polling path) is the public
virtual-transport method and is covered the same way. A garbage item is gone from
Redis once popped: the line is its record.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty

from .._celery_internals import read_redis_item

__all__ = ["Channel", "Transport"]

logger = logging.getLogger("girder_worker.worker")

#: What a bad item raises in kombu: JSONDecodeError (a ValueError), or the
#: envelope's missing or mistyped fields as the message is made.
_ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def _of_the_item(exc: BaseException) -> bool:
    """Whether ``exc`` came from decoding an item, not from the connection to Redis.

    A lost connection can surface as a ValueError or AttributeError from redis-py (a
    read on a closed socket): those must reach Celery, which reconnects. An error of
    the item's making is raised outside redis-py's frames.
    """
    if not isinstance(exc, _ITEM_ERRORS):
        return False
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module == "redis" or module.startswith("redis."):
            return False
        tb = tb.tb_next
    return True


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")[:200]


def _dropped(exc: Exception) -> bool:
    """Log and drop the item ``exc`` came from if it was at fault; False for any other error."""
    if not _of_the_item(exc):
        return False
    logger.error(
        "dropped an item of a Redis queue that is not a task message (%s); something other than a Celery "
        "client writes to this broker (the queue's list must hold kombu envelopes only)",
        _describe(exc),
    )
    return True


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """kombu's Redis channel; an item that is no kombu envelope is one log line."""

    def _brpop_read(self, **options: Any) -> Any:  # kombu's private reader: see read_redis_item
        return read_redis_item(super()._brpop_read, options, _dropped)

    def _get(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._get(queue, *args, **kwargs)
        except Empty:
            raise
        except Exception as exc:
            if not _of_the_item(exc):
                raise
            logger.error(
                "dropped an item of Redis queue %r that is not a task message (%s); something other than a Celery "
                "client writes to this broker",
                queue[:200],
                _describe(exc),
            )
            raise Empty() from None


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel

"""Fair dispatch's consumer pause on RabbitMQ, without a round trip (girder_worker.broker._rabbitmq).

A full worker cancels its task consumer and starts it again when a slot frees; a solo
worker does both at every task. The channel sends them without waiting for RabbitMQ's
replies, on the real RabbitMQ, with kombu's own Consumer.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from amqp import spec
from kombu import Connection, Consumer, Producer, Queue

from girder_worker.broker import _rabbitmq

from ..conftest import RABBITMQ_URL, wait_for


@pytest.fixture
def channel() -> Iterator[Any]:
    with Connection(RABBITMQ_URL, transport="girder_worker.broker._rabbitmq:Transport") as conn:
        yield conn.channel()


def _waits_counted(channel: Any) -> list[Any]:
    """Record each reply the channel waits for (py-amqp's Channel.wait), on this instance only."""
    waits: list[Any] = []
    wait = channel.wait

    def counting(*args: Any, **kwargs: Any) -> Any:
        waits.append(args[0] if args else kwargs.get("method"))
        return wait(*args, **kwargs)

    channel.wait = counting
    return waits


def test_a_paused_consumer_is_cancelled_and_started_again_without_waiting_for_rabbitmq(channel):
    queue = Queue(f"gwtest-pause-{uuid.uuid4().hex[:10]}", auto_delete=False)
    got: list[str] = []
    consumer = Consumer(channel, [queue], callbacks=[lambda body, message: (got.append(body), message.ack())])
    try:
        consumer.consume()
        waits = _waits_counted(channel)
        tags_before = set(channel.callbacks)

        with _rabbitmq.consumers_without_replies(channel):
            consumer.cancel()
        cancelled = tags_before - set(channel.callbacks)
        Producer(channel).publish("while paused", routing_key=queue.name, declare=[queue])
        # RabbitMQ routes a message apart from the channel's other methods: wait for it to count.
        wait_for(lambda: channel.queue_declare(queue.name, passive=True)[1] == 1, what="the message to be queued")
        queued, consumers = channel.queue_declare(queue.name, passive=True)[1:3]
        with _rabbitmq.consumers_without_replies(channel):
            consumer.consume()
        # Frames come one by one (the publish's confirm among them): read until the delivery.
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            with contextlib.suppress(socket.timeout):
                channel.connection.drain_events(timeout=1)

        # No cancel-ok or consume-ok was waited for (the old way waited for both).
        assert spec.Basic.CancelOk not in waits, waits
        assert spec.Basic.ConsumeOk not in waits, waits
        # The cancelled consumer is forgotten, as its cancel-ok would have done ...
        assert len(cancelled) == 1
        assert len(channel.callbacks) == len(tags_before)
        # ... RabbitMQ kept the message for no consumer while paused, and delivers it after.
        assert (queued, consumers) == (1, 0)
        assert got == ["while paused"]
    finally:
        consumer.cancel()
        channel.queue_delete(queue.name)


def test_outside_the_block_a_cancel_waits_for_its_reply_as_before(channel):
    queue = Queue(f"gwtest-pause-{uuid.uuid4().hex[:10]}", auto_delete=False)
    consumer = Consumer(channel, [queue], callbacks=[lambda body, message: message.ack()])
    try:
        consumer.consume()
        waits = _waits_counted(channel)

        consumer.cancel()

        assert waits == [spec.Basic.CancelOk]
        assert channel.callbacks == {}
    finally:
        channel.queue_delete(queue.name)

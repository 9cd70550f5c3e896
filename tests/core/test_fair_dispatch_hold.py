"""Fair dispatch on RabbitMQ: a held acknowledgement is written the moment the hold ends.

A full worker holds back the acknowledgement of the message that filled its last
process (prefetch 1, so RabbitMQ sends nothing more); the hold ends in an
``on_tick`` callback of kombu's event loop when a process frees. Celery's own
acknowledgement only queues the write with ``hub.call_soon``, which that loop runs
after its next poll: up to a second in which RabbitMQ could send nothing. These
tests use a real Celery request made from a real kombu message, kombu's real event
loop, and a channel that records the frames it is asked to write (the AMQP
connection itself is not what is tested here).
"""

from __future__ import annotations

import json
import logging
import uuid
from functools import partial
from typing import Any

import pytest
from celery import Celery
from kombu.asynchronous import Hub
from kombu.message import Message

from girder_worker.broker._dispatch import _Hold


class RecordingChannel:
    """Records the acknowledgements written on it (an AMQP channel's basic_ack)."""

    no_ack_consumers = None

    def __init__(self) -> None:
        self.acks: list[int] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append(delivery_tag)


@pytest.fixture
def held() -> Any:
    """A hub, a channel, and a request whose acknowledgement goes through the hub as Celery's does."""
    from celery.worker.request import Request

    app = Celery(set_as_current=False, broker="memory://")

    name = f"hold.echo.{uuid.uuid4().hex[:8]}"  # one app per test; Celery warns of a name used twice

    @app.task(name=name)
    def echo(x: int) -> int:
        return x

    hub = Hub()
    channel = RecordingChannel()
    sent = app.amqp.as_task_v2(str(uuid.uuid4()), name, args=(1,), kwargs={})
    message = Message(
        body=json.dumps(sent.body),
        channel=channel,
        content_type="application/json",
        content_encoding="utf-8",
        headers=sent.headers,
        properties=sent.properties,
        delivery_info={"exchange": "", "routing_key": "celery", "consumer_tag": "c1"},
        delivery_tag=7,
    )

    def celerys_acknowledgement(logger: logging.Logger, errors: Any) -> None:
        # What the consumer hands a request with an event loop: Consumer.call_soon_ack.
        hub.call_soon(partial(message.ack_log_error, logger, errors))

    request = Request(message, on_ack=celerys_acknowledgement, app=app, task=app.tasks[name])
    yield hub, channel, request
    hub.close()
    app.close()


def one_turn_polls(hub: Hub, channel: RecordingChannel) -> tuple[Any, list[list[int]]]:
    """kombu's event loop, whose poll notes which acknowledgements were written by then."""
    polled_with: list[list[int]] = []

    class Poller:
        def poll(self, timeout: float) -> list[Any]:
            polled_with.append(list(channel.acks))
            return []

        def register(self, *args: Any) -> None:
            pass

        def unregister(self, *args: Any) -> None:
            pass

        def close(self) -> None:
            pass

    hub.poller = Poller()
    hub.readers[0] = (lambda: None, ())  # a reader, so that the loop polls
    return hub.create_loop(), polled_with


def test_a_hold_that_ends_in_a_tick_writes_the_acknowledgement_before_the_loop_polls(held):
    hub, channel, request = held
    hold = _Hold(request, timer=None)
    request.acknowledge()  # the run started: Celery asks; the hold keeps it
    assert channel.acks == []

    hub.on_tick.add(hold.end)  # where fair dispatch ends a hold (maybe_resume)
    loop, polled_with = one_turn_polls(hub, channel)
    next(loop)

    assert polled_with == [[7]], "the acknowledgement waited for the next poll"
    assert request.acknowledged


def test_a_hold_that_ends_before_celery_asks_leaves_the_acknowledgement_to_celery(held):
    hub, channel, request = held
    hold = _Hold(request, timer=None)

    hold.end()
    assert channel.acks == []  # nothing was due yet

    request.acknowledge()  # the run starts later: Celery's own way, through the loop
    assert channel.acks == []
    loop, polled_with = one_turn_polls(hub, channel)
    next(loop)
    assert polled_with == [[7]]


def test_a_hold_ended_without_writing_leaves_the_message_unacknowledged(held):
    _, channel, request = held
    hold = _Hold(request, timer=None)
    request.acknowledge()

    hold.end(write=False)  # the channel closed: the broker delivers it again

    assert channel.acks == []

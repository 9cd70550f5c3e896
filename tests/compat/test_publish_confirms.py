"""RabbitMQ publisher confirms through a window (girder_worker.broker._rabbitmq), on the real RabbitMQ.

Each test publishes to a queue of its own and reads back what RabbitMQ holds. A
refusal is RabbitMQ's own: a queue with ``x-max-length`` 1 and ``x-overflow``
``reject-publish`` answers a second message with ``basic.nack``. A broken
connection is the client's real socket shut down, as a network cut leaves it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer, Queue

from girder_worker import PublishError
from girder_worker.broker import _rabbitmq

from ..conftest import RABBITMQ_URL, broker_env, clean_env

TASK = "gwtest.never_runs"  # nothing consumes these queues: the tests read the messages back


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"gwtest-confirms-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(RABBITMQ_URL) as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture(autouse=True)
def _settled() -> None:
    # kombu's connection pools, and so the channels' windows, are process-wide: settle what
    # earlier tests published, so that this test counts its own messages.
    with contextlib.suppress(PublishError):
        _rabbitmq.confirm_published(timeout=10)


def rabbitmq_env(tmp_path: Any, **extra: str) -> dict[str, str]:
    return {**broker_env("rabbitmq", tmp_path / "data"), "GIRDER_WORKER_PLUGINS": "", **extra}


def task_ids_in(name: str) -> list[str]:
    """The task ids of the messages RabbitMQ holds in queue ``name`` (taken off it)."""
    ids = []
    with Connection(RABBITMQ_URL) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            ids.append(message.headers["id"])
    return ids


REFUSING = {"x-max-length": 1, "x-overflow": "reject-publish"}


def publish(app: Any, name: str, count: int, refusing: bool = False) -> list[str]:
    queue = Queue(name, Exchange(name), name, queue_arguments=REFUSING) if refusing else name
    return [app.send_task(TASK, args=[i], queue=queue).id for i in range(count)]


def test_a_client_publish_does_not_wait_for_its_confirm_and_confirm_published_does(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path))

    ids = publish(app, queue, 10)

    # py-amqp reads the confirms that arrived before each publish; the last message's cannot have.
    assert _rabbitmq.unconfirmed() >= 1
    assert app.confirm_published() >= 1
    assert _rabbitmq.unconfirmed() == 0
    assert task_ids_in(queue) == ids


def test_a_window_of_one_waits_for_every_confirm(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path, GIRDER_WORKER_PUBLISH_WINDOW="1"))

    for i in range(5):
        app.send_task(TASK, args=[i], queue=queue)
        assert _rabbitmq.unconfirmed() == 0

    assert app.confirm_published() == 0
    assert len(task_ids_in(queue)) == 5


def test_a_full_window_makes_the_publish_wait(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path, GIRDER_WORKER_PUBLISH_WINDOW="3"))

    for i in range(20):
        app.send_task(TASK, args=[i], queue=queue)
        assert _rabbitmq.unconfirmed() < 3

    app.confirm_published()
    assert len(task_ids_in(queue)) == 20


def test_a_worker_waits_for_each_confirm(client_app, tmp_path, queue, monkeypatch):
    app = client_app(rabbitmq_env(tmp_path))
    assert _rabbitmq.ConfirmEachPublish in app.steps["worker"]  # the pipeline puts it on every worker
    monkeypatch.setattr(_rabbitmq, "_in_worker", False)

    _rabbitmq.ConfirmEachPublish(parent=None)  # what a worker's blueprint does first
    publish(client_app(rabbitmq_env(tmp_path)), queue, 3)

    assert _rabbitmq.unconfirmed() == 0
    assert len(task_ids_in(queue)) == 3


def test_a_message_rabbitmq_refuses_is_published_again_then_reported(client_app, tmp_path, queue, caplog):
    app = client_app(rabbitmq_env(tmp_path))

    kept, *refused = publish(app, queue, 3, refusing=True)
    with pytest.raises(PublishError) as raised:
        app.confirm_published()

    message = str(raised.value)
    assert "\n" not in message
    assert f"RabbitMQ refused {TASK}[{refused[0]}], {TASK}[{refused[1]}] 3 times" in message
    assert message.endswith("publish those tasks again")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert [e for e in errors if refused[0] in e] == [
        f"girder-worker: RabbitMQ refused {TASK}[{refused[0]}] 3 times (basic.nack), so it is not queued: look at "
        "the queue's limits (x-max-length, x-overflow) and RabbitMQ's log; publish it again"
    ]
    assert task_ids_in(queue) == [kept]
    assert app.confirm_published() == 0  # reported once


def test_a_refused_message_is_queued_when_its_next_attempt_finds_room(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path))
    first, second = publish(app, queue, 2, refusing=True)  # RabbitMQ refuses the second: the queue is full
    for confirms in _rabbitmq._brokers():  # RabbitMQ's answers read (the refusal among them), not acted on
        for window in confirms.windows:
            with window.lock:
                window.wait(0, time.monotonic() + 10)
    assert task_ids_in(queue) == [first]  # now it has room

    app.confirm_published()  # reads the refusal and publishes the second again

    assert task_ids_in(queue) == [second]


def test_with_a_window_of_one_the_refused_publish_raises(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path, GIRDER_WORKER_PUBLISH_WINDOW="1"))
    target = Queue(queue, Exchange(queue), queue, queue_arguments=REFUSING)
    app.send_task(TASK, args=[0], queue=target)

    with pytest.raises(PublishError) as raised:
        app.send_task(TASK, args=[1], queue=target, task_id="refused-one")

    assert str(raised.value) == (
        f"task {TASK}[refused-one] was not sent: RabbitMQ refused {TASK}[refused-one] 3 times (basic.nack), so "
        "it is not queued: look at the queue's limits (x-max-length, x-overflow) and RabbitMQ's log; publish it "
        "again later"
    )
    assert len(task_ids_in(queue)) == 1


def test_a_connection_closed_by_its_owner_reads_its_confirms_and_sends_nothing_twice(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path))
    target = Queue(queue, Exchange(queue), queue)
    with app.connection_for_write() as conn:  # a connection of the caller's own, closed at the end
        producer = Producer(conn.default_channel)
        for i in range(3):
            producer.publish({"n": i}, exchange=target.exchange, routing_key=queue, declare=[target], headers={"id": i})
        assert _rabbitmq.unconfirmed() >= 1

    assert _rabbitmq.unconfirmed() == 0
    publish(app, queue, 1)  # another connection: nothing of the closed one goes again
    app.confirm_published()
    held = task_ids_in(queue)
    assert held[:3] == [0, 1, 2]
    assert len(held) == 4


def published_again(caplog: Any) -> int:
    """How many messages the warnings say were published again (one line per broken connection)."""
    found = [re.search(r"publishing (\d+) message\(s\) again", r.getMessage()) for r in caplog.records]
    return sum(int(m.group(1)) for m in found if m)


_CUT: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_cut_sockets() -> Iterator[None]:
    yield
    while _CUT:  # kombu drops a broken connection without closing its socket
        _CUT.pop().close()


def _cut_connections() -> int:
    """Shut down the sockets of every connection with unconfirmed messages, as a network cut would."""
    cut = 0
    for confirms in _rabbitmq._brokers():
        for window in confirms.windows:
            if window.unconfirmed:
                sock = window.channel.connection.sock
                sock.shutdown(socket.SHUT_RDWR)
                # What RabbitMQ sent until it saw the cut (confirms among it) is lost with
                # the connection: read and dropped here, up to RabbitMQ's own close.
                sock.settimeout(5)
                with contextlib.suppress(ConnectionResetError):  # RabbitMQ may reset rather than close
                    while sock.recv(65536):
                        pass
                _CUT.append(sock)
                cut += 1
    return cut


def test_messages_of_a_broken_connection_go_again_before_the_next_publish(client_app, tmp_path, queue, caplog):
    app = client_app(rabbitmq_env(tmp_path))
    before = publish(app, queue, 5)
    lost = _rabbitmq.unconfirmed()
    assert lost >= 1  # the last message's confirm cannot have been read yet
    assert _cut_connections() == 1

    after = publish(app, queue, 1)  # kombu reconnects; the unconfirmed ones go first

    app.confirm_published()
    assert published_again(caplog) == lost
    held = task_ids_in(queue)
    assert set(held) == {*before, *after}
    assert len(held) == 6 + lost  # RabbitMQ had them: the copies are the worker's to drop (same id and body)


def test_confirm_published_publishes_the_messages_of_a_broken_connection_again(client_app, tmp_path, queue, caplog):
    app = client_app(rabbitmq_env(tmp_path))
    sent = publish(app, queue, 4)
    lost = _rabbitmq.unconfirmed()
    assert lost >= 1
    assert _cut_connections() == 1

    assert app.confirm_published() == lost

    assert published_again(caplog) == lost
    held = task_ids_in(queue)
    assert set(held) == set(sent)
    assert len(held) == 4 + lost


def test_a_forked_child_leaves_its_parents_confirms_alone(client_app, tmp_path, queue):
    app = client_app(rabbitmq_env(tmp_path))
    publish(app, queue, 3)
    assert _rabbitmq.unconfirmed() >= 1

    pid = os.fork()
    if pid == 0:  # the child: it has nothing to confirm, and its exit reads no parent socket
        os._exit(0 if _rabbitmq.unconfirmed() == 0 else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert app.confirm_published() >= 1
    assert len(task_ids_in(queue)) == 3


EXITING_CLIENT = textwrap.dedent(
    """
    import json, sys
    from kombu import Exchange, Queue
    from girder_worker.app import app
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    queue = Queue(name, Exchange(name), name, queue_arguments=arguments or None)
    ids = [app.send_task("gwtest.never_runs", args=[i], queue=queue).id for i in range(3)]
    print(json.dumps(ids))
    """
)


@pytest.mark.parametrize("refusing", [False, True], ids=["confirmed", "refused"])
def test_a_client_that_exits_waits_for_its_confirms(tmp_path, queue, refusing):
    env = clean_env(rabbitmq_env(tmp_path))
    arguments = json.dumps(REFUSING if refusing else {})

    done = subprocess.run(
        [sys.executable, "-c", EXITING_CLIENT, queue, arguments], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if not refusing:
        assert lines == []
        assert task_ids_in(queue) == ids
        return
    assert task_ids_in(queue) == ids[:1]
    at_exit = [line for line in lines if "at exit" in line]
    assert at_exit == [
        f"girder-worker: at exit: RabbitMQ refused {TASK}[{ids[1]}], {TASK}[{ids[2]}] 3 times, so it did not "
        "queue them; publish those tasks again"
    ]

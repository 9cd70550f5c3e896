"""RabbitMQ publisher confirms that do not make each publish wait: a confirm window.

RabbitMQ confirms every message it has taken (``basic.ack``; a persistent message once
it is on disk) or refused (``basic.nack``). Waiting for that after each publish, as
kombu's ``confirm_publish`` transport option does, makes a client publish one message at
a time: a third of the rate of an unconfirmed publish. This transport keeps the confirms
and drops the waiting:

* A publish returns once its message is written to the connection. Confirms that have
  arrived are read before the next publish (py-amqp does), without waiting.
* A connection has at most :data:`DEFAULT_WINDOW` unconfirmed messages
  (``GIRDER_WORKER_PUBLISH_WINDOW``); the publish that reaches that waits for RabbitMQ.
* A refused message is published again, :data:`ATTEMPTS` times in all; then one ERROR
  line names its task, and :func:`confirm_published` raises for it.
* A message whose connection broke before its confirm arrived is published again on
  the new connection, before the next message (kombu reconnects the publish that found
  the connection broken). If RabbitMQ had taken the first copy, the worker drops the
  second: it has the same task id and body (see :mod:`girder_worker.delivery`).
* :func:`confirm_published` waits for every unconfirmed message of the process;
  ``app.confirm_published()`` calls it, and so does the interpreter's exit, which logs
  what RabbitMQ refused or did not confirm.
* A worker waits for each confirm (window 1): what it acknowledges next, a retried or
  re-delivered task's old message, rests on its publishes.

``GIRDER_WORKER_PUBLISH_WINDOW=1`` makes every publish wait. The ``confirm_publish``
transport option, set either way in ``GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS``, still
means what it means to kombu (``true``: py-amqp waits for each; ``false``: no confirms),
and this transport then keeps out of the way.

The channel also cancels and starts consumers without waiting for RabbitMQ's reply when
fair dispatch pauses and resumes (:func:`consumers_without_replies`).

Relies on py-amqp's public channel API: ``confirm_select()``, the ``basic_ack`` and
``basic_nack`` handlers in ``channel.events``, ``connection.drain_events(timeout)``,
``channel.is_open``, ``basic_cancel``/``basic_consume`` with ``nowait`` and the
``callbacks``/``cancel_callbacks`` of a channel's consumers; and on kombu's public ``pyamqp`` transport
classes (``Transport.Connection.Channel``), which it subclasses.
tests/compat/test_publish_confirms.py runs it on every Celery/kombu version we declare.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from amqp.exceptions import AMQPError
from celery import bootsteps
from kombu.connection import Connection as KombuConnection
from kombu.exceptions import OperationalError
from kombu.transport import pyamqp

from ._outages import DEFAULT_WINDOW, PUBLISH_RETRY_SECONDS, WINDOW_OPTION, PublishError

__all__ = [
    "ATTEMPTS",
    "DEFAULT_WINDOW",
    "WINDOW_OPTION",
    "Channel",
    "ConfirmEachPublish",
    "SSLTransport",
    "Transport",
    "confirm_published",
    "consumers_without_replies",
    "unconfirmed",
]

logger = logging.getLogger("girder_worker.publish")

#: How many times in all a message that RabbitMQ refuses is published.
ATTEMPTS = 3
#: How long a publish waits at a full window, and confirm_published by default, in seconds.
CONFIRM_SECONDS = 30.0
#: How long the interpreter's exit waits for confirms (and publishes lost messages again).
EXIT_SECONDS = float(PUBLISH_RETRY_SECONDS)

_in_worker = False


@dataclass
class _Sent:
    """A published message, kept until RabbitMQ confirms it: enough to publish it again."""

    message: Any
    exchange: str
    routing_key: str
    mandatory: bool
    attempts: int = 1

    @property
    def task(self) -> str:
        headers = getattr(self.message, "properties", {}).get("application_headers") or {}
        if "task" in headers:
            return f"{headers['task']}[{headers.get('id', '?')}]"
        return f"a message to {self.exchange or '(default exchange)'}/{self.routing_key}"


class _Window:
    """One channel's unconfirmed messages, by delivery tag (the n-th publish since confirm_select).

    Only the thread holding :attr:`lock` reads the channel's connection: the one publishing
    on it, or :func:`confirm_published`.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.lock = threading.Lock()
        self.tag = 0
        self.unconfirmed: dict[int, _Sent] = {}
        self.refused: list[_Sent] = []
        self.broken = False
        channel.confirm_select()
        channel.events["basic_ack"].add(self._acked)
        channel.events["basic_nack"].add(self._nacked)

    def _confirmed(self, tag: int, multiple: bool) -> list[_Sent]:
        if not multiple:
            sent = self.unconfirmed.pop(tag, None)
            return [] if sent is None else [sent]
        done = []
        while self.unconfirmed:
            first = next(iter(self.unconfirmed))
            if first > tag:
                break
            done.append(self.unconfirmed.pop(first))
        return done

    def _acked(self, tag: int, multiple: bool = False) -> None:
        self._confirmed(tag, multiple)

    def _nacked(self, tag: int, multiple: bool = False, *args: Any) -> None:
        self.refused.extend(self._confirmed(tag, multiple))

    def sent(self, sent: _Sent) -> int:
        self.tag += 1
        self.unconfirmed[self.tag] = sent
        return self.tag

    @property
    def alive(self) -> bool:
        return not self.broken and bool(self.channel.is_open) and self.channel.connection is not None

    def wait(self, most: int, deadline: float) -> bool:
        """Read confirms until at most ``most`` are missing; False if ``deadline`` came first."""
        while len(self.unconfirmed) > most and self.alive:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._drain(remaining)
        return True

    def _drain(self, timeout: float) -> None:
        try:
            self.channel.connection.drain_events(timeout=timeout)
        except TimeoutError:  # socket.timeout: the deadline's business
            pass
        except (OSError, AMQPError):
            self.broken = True
            raise

    def give_up(self, keep: int | None = None) -> list[_Sent]:
        """Take every refused and unconfirmed message out (but the one of tag ``keep``)."""
        lost = [*self.refused, *(s for tag, s in self.unconfirmed.items() if tag != keep)]
        self.refused.clear()
        self.unconfirmed.clear()
        return lost


class _Confirms:
    """The confirm windows of one process's channels to one broker, and what is to be sent again.

    :attr:`lock` guards the lists; a window's own lock guards its channel.
    """

    def __init__(self, client: Any) -> None:
        self.client = client  # a kombu Connection to the broker: its settings open one to publish again at the end
        self.windows: list[_Window] = []
        self.again: list[_Sent] = []
        self.failed: list[_Sent] = []
        self.lock = threading.Lock()

    def add(self, window: _Window) -> None:
        with self.lock:
            self.windows.append(window)

    def collect_lost(self) -> None:
        """Move the messages of channels that closed before their confirms into :attr:`again`."""
        with self.lock:
            windows = list(self.windows)
        lost: list[_Sent] = []
        for window in windows:
            if window.alive or not window.lock.acquire(blocking=False):
                continue  # alive, or its own thread is on it
            try:
                lost.extend(window.give_up())
            finally:
                window.lock.release()
            with self.lock:
                self.windows.remove(window)
        if lost:
            logger.warning(
                "girder-worker: publishing %d message(s) again (%s): their connection to RabbitMQ closed before "
                "RabbitMQ confirmed them; a worker drops a copy of a task it has already taken",
                len(lost),
                _names(lost),
            )
            self.put_back(lost)

    def put_back(self, sent: list[_Sent]) -> None:
        with self.lock:
            self.again[:0] = sent

    def take_again(self) -> list[_Sent]:
        with self.lock:
            again, self.again = self.again, []
        return again

    def take_refused(self, window: _Window) -> None:
        refused = list(window.refused)
        window.refused.clear()
        again = []
        for sent in refused:
            if sent.attempts < ATTEMPTS:
                sent.attempts += 1
                again.append(sent)
                continue
            with self.lock:
                self.failed.append(sent)
            logger.error("girder-worker: %s; publish it again", _refused(sent))
        if again:
            self.put_back(again)

    def forget_failed(self, sent: _Sent) -> bool:
        """Whether ``sent`` was refused for good; it is no longer listed as such."""
        with self.lock:
            if any(f is sent for f in self.failed):
                self.failed = [f for f in self.failed if f is not sent]
                return True
        return False

    def closing(self, window: _Window) -> None:
        """``window``'s channel is being closed by its owner: read its last confirms, then drop it.

        Only what a broken connection left is published again; a clean close loses nothing,
        and what RabbitMQ refused or did not confirm by then goes again on another connection.
        """
        with window.lock:
            if window.alive:
                with contextlib.suppress(OSError, AMQPError):
                    window.wait(0, time.monotonic() + EXIT_SECONDS)
            self.take_refused(window)
            left = window.give_up()
        with self.lock:
            if window in self.windows:
                self.windows.remove(window)
        if left:
            self.put_back(left)

    def unconfirmed(self) -> int:
        with self.lock:
            return len(self.again) + sum(len(w.unconfirmed) + len(w.refused) for w in self.windows)


_BROKERS: dict[str, _Confirms] = {}
_BROKERS_LOCK = threading.Lock()


def _confirms_for(client: Any) -> _Confirms:
    key = client.as_uri(include_password=True)
    with _BROKERS_LOCK:
        confirms = _BROKERS.get(key)
        if confirms is None:
            confirms = _BROKERS[key] = _Confirms(client)
        return confirms


def _brokers() -> list[_Confirms]:
    with _BROKERS_LOCK:
        return list(_BROKERS.values())


def _refused(sent: _Sent) -> str:
    return (
        f"RabbitMQ refused {sent.task} {ATTEMPTS} times (basic.nack), so it is not queued: look at the "
        "queue's limits (x-max-length, x-overflow) and RabbitMQ's log"
    )


def _names(sent: list[_Sent], most: int = 5) -> str:
    names = [s.task for s in sent[:most]]
    if len(sent) > most:
        names.append(f"and {len(sent) - most} more")
    return ", ".join(names)


class Channel(pyamqp.Channel):  # type: ignore[misc]
    """kombu's AMQP channel, whose publishes RabbitMQ confirms through a window."""

    _gw_window: _Window | None = None
    _gw_confirms: _Confirms | None = None
    _gw_limit: int | None = None

    def _limit(self) -> int:
        """0: no window (kombu's confirm_publish option rules); else the most unconfirmed messages."""
        if self._gw_limit is None:
            if self.connection is None:
                return 0  # closed: py-amqp's own publish raises kombu's recoverable error
            options = getattr(self.connection.client, "transport_options", None) or {}
            if "confirm_publish" in options:
                self._gw_limit = 0
            else:
                self._gw_limit = max(1, int(options.get(WINDOW_OPTION, DEFAULT_WINDOW)))
        # Read here, not kept: kombu's connection pools are process-wide.
        return 1 if _in_worker and self._gw_limit else self._gw_limit

    def _window(self, confirms: _Confirms | None = None) -> _Window:
        window = self._gw_window
        if window is None:
            confirms = self._gw_confirms = confirms or _confirms_for(self.connection.client)
            window = self._gw_window = _Window(self)
            confirms.add(window)
        return window

    def basic_publish(
        self,
        msg: Any,
        exchange: str = "",
        routing_key: str = "",
        mandatory: bool = False,
        immediate: bool = False,
        timeout: float | None = None,
        confirm_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        limit = self._limit()
        if not limit:
            return super().basic_publish(msg, exchange, routing_key, mandatory, immediate, timeout=timeout, **kwargs)
        window = self._window()
        confirms = self._gw_confirms
        assert confirms is not None
        sent = _Sent(msg, exchange, routing_key, mandatory)
        with window.lock:
            self._publish_again(confirms, window)
            current = self._send(window, sent, timeout)
            self._settle(confirms, window, limit, confirm_timeout or CONFIRM_SECONDS, current)
        if limit == 1 and confirms.forget_failed(sent):
            # Its caller waits for this message's confirm: it hears of the refusal itself.
            raise PublishError(f"task {sent.task} was not sent: {_refused(sent)}; publish it again later")
        return None

    def _send(self, window: _Window, sent: _Sent, timeout: float | None) -> int:
        super().basic_publish(sent.message, sent.exchange, sent.routing_key, sent.mandatory, timeout=timeout)
        return window.sent(sent)

    def _publish_again(self, confirms: _Confirms, window: _Window) -> None:
        """Publish, on this channel, what closed channels and refusals left unconfirmed."""
        if len(confirms.windows) > 1 or not window.alive:
            confirms.collect_lost()
        again = confirms.take_again() if confirms.again else []
        for i, sent in enumerate(again):
            try:
                self._send(window, sent, None)
            except BaseException:
                confirms.put_back(again[i:])
                raise

    def _settle(self, confirms: _Confirms, window: _Window, limit: int, seconds: float, current: int) -> None:
        """Read the confirms that arrived; wait while ``limit`` are missing; publish refused ones again."""
        deadline = None  # read from the clock only when there is something to wait for
        try:
            # No read of what has arrived here: py-amqp reads it before each publish
            # (basic_publish drains the connection for a connection.blocked notice).
            while True:
                if window.refused:
                    confirms.take_refused(window)
                    self._publish_again(confirms, window)
                if len(window.unconfirmed) < limit and not window.refused:
                    return
                deadline = deadline or time.monotonic() + seconds
                if not window.wait(limit - 1, deadline):
                    raise OperationalError(
                        f"RabbitMQ confirmed none of the last {len(window.unconfirmed)} message(s) in {seconds:g} s "
                        "(it blocks publishers during a memory or disk alarm: see `rabbitmqctl status`)"
                    )
        except (OSError, AMQPError):
            # The connection broke before RabbitMQ confirmed these. kombu reconnects and
            # publishes the current message again; the others go first, on the new channel.
            confirms.put_back(window.give_up(keep=current))
            raise

    def close(self, *args: Any, **kwargs: Any) -> Any:
        _closing(self)
        return super().close(*args, **kwargs)

    #: Set by :func:`consumers_without_replies`: cancel and consume without waiting for the broker.
    _gw_no_replies = False

    def basic_cancel(self, consumer_tag: str, nowait: bool = False, *args: Any, **kwargs: Any) -> Any:
        if not self._gw_no_replies or nowait:
            return super().basic_cancel(consumer_tag, nowait, *args, **kwargs)
        done = super().basic_cancel(consumer_tag, True, *args, **kwargs)
        # No cancel-ok comes to forget the consumer on: forget it now. A delivery to it
        # still on the way is rejected back to the queue by py-amqp.
        self.callbacks.pop(consumer_tag, None)
        self.cancel_callbacks.pop(consumer_tag, None)
        return done

    def basic_consume(self, *args: Any, **kwargs: Any) -> Any:
        if self._gw_no_replies and kwargs.get("consumer_tag"):  # no reply is needed to learn the tag
            kwargs["nowait"] = True
        return super().basic_consume(*args, **kwargs)


@contextlib.contextmanager
def consumers_without_replies(channel: Any) -> Iterator[None]:
    """Within this block, ``channel`` cancels and starts consumers without waiting for RabbitMQ.

    A fair-dispatch pause cancels the task consumer when the worker fills, and starts it
    again when a slot frees: for a solo worker, at every task. Each waited for its reply
    (``basic.cancel-ok``, ``basic.consume-ok``): two round trips to RabbitMQ per task. The
    frames go in order on the channel, so the cancel still reaches RabbitMQ before the
    acknowledgement that would let it send the next message. An error (a queue deleted
    meanwhile) closes the channel, and the worker's consumer reconnects. A channel of
    another transport is left as it is.
    """
    if not isinstance(channel, Channel):
        yield
        return
    channel._gw_no_replies = True
    try:
        yield
    finally:
        channel._gw_no_replies = False


def _closing(channel: Any) -> None:
    window, confirms = getattr(channel, "_gw_window", None), getattr(channel, "_gw_confirms", None)
    if window is not None and confirms is not None:
        channel._gw_window = None
        confirms.closing(window)


def confirm_published(timeout: float = CONFIRM_SECONDS) -> int:
    """Wait until RabbitMQ has confirmed every message this process published; return how many it waited for.

    Messages whose connection closed first are published again, on a new connection.

    Raises:
        girder_worker.PublishError: (a :class:`kombu.exceptions.OperationalError`) RabbitMQ
            refused a message :data:`ATTEMPTS` times, or did not confirm every message within
            ``timeout`` seconds; its message is one line naming the tasks.
    """
    deadline = time.monotonic() + timeout
    waited = 0
    problems: list[str] = []
    for confirms in _brokers():
        waited += confirms.unconfirmed()
        missing = _confirm_all(confirms, deadline)
        with confirms.lock:
            failed, confirms.failed = confirms.failed, []
        if failed:
            problems.append(f"RabbitMQ refused {_names(failed)} {ATTEMPTS} times, so it did not queue them")
        if missing:
            problems.append(f"RabbitMQ did not confirm {_names(missing)} within {timeout:g} s")
    if problems:
        raise PublishError("; ".join(problems) + "; publish those tasks again")
    return waited


def _confirm_all(confirms: _Confirms, deadline: float) -> list[_Sent]:
    """Wait for one broker's confirms, publishing lost and refused messages again; return the missing."""
    connection = None
    try:
        for _ in range(ATTEMPTS + 1):
            with confirms.lock:
                windows = list(confirms.windows)
            for window in windows:
                with window.lock:
                    with contextlib.suppress(OSError, AMQPError):  # a closed window: collected below
                        window.wait(0, deadline)
                    confirms.take_refused(window)
            confirms.collect_lost()
            if not confirms.again or time.monotonic() >= deadline:
                break
            if connection is None:  # a connection of its own: the pool's may be another thread's
                connection = KombuConnection(**confirms.client.info())
            channel = cast(Channel, connection.default_channel)  # this transport's
            window = channel._window(confirms)
            with window.lock:
                channel._publish_again(confirms, window)
    except (OSError, AMQPError, OperationalError) as exc:
        logger.warning("girder-worker: could not publish again to RabbitMQ (%s)", " ".join(str(exc).split()))
    finally:
        if connection is not None:
            connection.release()
    with confirms.lock:
        missing = list(confirms.again)
        for window in confirms.windows:
            missing.extend([*window.unconfirmed.values(), *window.refused])
    return missing


def unconfirmed() -> int:
    """How many messages this process published that RabbitMQ has not confirmed (as far as read)."""
    return sum(c.unconfirmed() for c in _brokers())


def _at_exit() -> None:
    if not any(c.unconfirmed() or c.failed for c in _brokers()):
        return
    try:
        confirm_published(timeout=EXIT_SECONDS)
    except OperationalError as exc:
        logger.error("girder-worker: at exit: %s", exc)


def _forget() -> None:
    # A forked child has the parent's sockets: it must neither read them nor publish the parent's messages.
    global _BROKERS_LOCK
    _BROKERS.clear()
    _BROKERS_LOCK = threading.Lock()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_forget)


class Connection(pyamqp.Connection):  # type: ignore[misc]
    """kombu's AMQP connection, with :class:`Channel`; a clean close reads its channels' last confirms."""

    Channel = Channel

    def close(self, *args: Any, **kwargs: Any) -> Any:
        for channel in list((self.channels or {}).values()):
            _closing(channel)
        return super().close(*args, **kwargs)


class Transport(pyamqp.Transport):  # type: ignore[misc]
    """kombu's AMQP transport, whose publishes RabbitMQ confirms through a window."""

    Connection = Connection


class SSLTransport(pyamqp.SSLTransport):  # type: ignore[misc]
    """kombu's AMQP-over-TLS transport, whose publishes RabbitMQ confirms through a window."""

    Connection = Connection


class ConfirmEachPublish(bootsteps.Step):  # type: ignore[misc]
    """Worker bootstep: a worker's publishes each wait for RabbitMQ's confirm (window 1)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        global _in_worker
        _in_worker = True
        super().__init__(parent, **kwargs)

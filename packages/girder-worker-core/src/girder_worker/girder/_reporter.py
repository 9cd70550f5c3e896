"""The process's Girder reporter: one sender thread per Girder origin for every job run here.

Tasks never wait for Girder. They record what to report in their
:class:`~girder_worker.girder._job.JobChannel`; the channel wakes the sender
thread of its job's origin (``scheme://host:port``) when something becomes due,
and that thread sends it. Each origin has its own thread (a *lane*, at most
:data:`MAX_LANES`, each ending when idle), so a Girder, or a callback URL, that
answers slowly or never delays only the reports of its own jobs. When Girder does
not answer, the lane backs off (probing with one job at a time),
says so once in the worker log, keeps what is waiting within a memory budget, and
drops a job's reports only when Girder has been silent for
``GIRDER_WORKER_REPORT_RETRY_SECONDS``.

Each process has its own reporter, made on first use; a forked pool process
starts with none, since threads and HTTP connections do not survive a fork.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Any

from girder_worker_utils import JobStatus

from ..monitoring import _metrics
from ._job import JobChannel
from ._rest import GirderUnavailable, Http, JobSpec, ReportSettings, origin_of

__all__ = ["Reporter", "current_reporter", "reporter"]

logger = logging.getLogger("girder_worker.girder")

MAX_BACKOFF = 10.0
#: Sender threads at most; the origins past this many share one more.
MAX_LANES = 16
#: Seconds a lane with nothing to send keeps its thread.
LANE_IDLE = 30.0
_SHARED = "(shared)"
#: Characters of log that finished, undelivered jobs may hold while Girder is away.
HELD_BUDGET = 64 * 1024 * 1024


class _Host:
    """One Girder server as the sender sees it: up, or down since when."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down_since: float | None = None
        self.next_try = 0.0
        self.backoff = 0.0
        self.reason = ""

    def failed(self, reason: str, now: float, retry_seconds: float) -> None:
        if self.down_since is None:
            self.down_since = now
            self.backoff = 0.25
            logger.warning(
                "Girder at %s does not answer (%s); job reports are kept and retried for up to %.0f s",
                self.name,
                reason,
                retry_seconds,
            )
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        self.next_try = now + self.backoff
        self.reason = reason

    def answered(self, now: float) -> bool:
        """Mark it up; return True if it was down."""
        if self.down_since is None:
            return False
        logger.warning("Girder at %s answers again after %.1f s; sending the held job reports", self.name,
                       now - self.down_since)  # fmt: skip
        self.down_since = None
        self.backoff = 0.0
        return True


def _host_name(url: str) -> str:
    return origin_of(url)


class _Lane:
    """One sender thread and the channels it has to look at, by due time."""

    def __init__(self, name: str, lock: threading.Lock) -> None:
        self.name = name
        self.cond = threading.Condition(lock)
        self.heap: list[tuple[float, int, JobChannel]] = []
        self.thread: threading.Thread | None = None


class Reporter:
    """Sends every job channel of this process; see the module's documentation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # channels forgotten
        self._lanes: dict[str, _Lane] = {}
        self._order = itertools.count()
        self._channels: dict[JobChannel, None] = {}
        self._hosts: dict[str, _Host] = {}
        self._local = threading.local()

    # -- channels ---------------------------------------------------------------

    def open(self, spec: JobSpec, settings: ReportSettings) -> JobChannel:
        """A channel for one run of the job ``spec`` names."""
        channel = JobChannel(spec, settings, self)
        with self._lock:
            self._channels[channel] = None
            if any(h.down_since is not None for h in self._hosts.values()):
                self._keep_within_budget()
            _metrics.report_backlog(len(self._channels))
        return channel

    def start(self, channel: JobChannel) -> None:
        """Report RUNNING now, waiting at most ``start_timeout`` for Girder.

        It is the one report a task waits for: a job found already cancelled in
        Girder must not run. When Girder is known to be away the task does not
        wait: RUNNING is sent in the background like everything else.
        """
        channel._queue_status(JobStatus.RUNNING)
        settings = channel.settings
        next_time = self.send(channel, timeout=(settings.connect_timeout, settings.start_timeout), wait=True)
        if next_time is not None:
            self.wake(channel, next_time)

    def wake(self, channel: JobChannel, when: float) -> None:
        """Have the sender of the channel's origin look at it at ``when`` (monotonic time) or sooner."""
        with self._lock:
            if channel.done or when >= channel.scheduled_at:
                return
            channel.scheduled_at = when
            lane = self._lane(channel.origin)
            heapq.heappush(lane.heap, (when, next(self._order), channel))
            if lane.thread is None:
                lane.thread = threading.Thread(
                    target=self._run, args=(lane,), name=f"girder-worker-reporter {lane.name}", daemon=True
                )
                lane.thread.start()
            lane.cond.notify()

    def _lane(self, origin: str) -> _Lane:
        # Called with the lock held.
        lane = self._lanes.get(origin)
        if lane is None:
            name = origin if len(self._lanes) < MAX_LANES else _SHARED
            lane = self._lanes.get(name)
            if lane is None:
                lane = self._lanes[name] = _Lane(name, self._lock)
        return lane

    def http(self) -> Http:
        """This thread's HTTP session."""
        http: Http | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = Http()
        return http

    def pending(self) -> list[JobChannel]:
        with self._lock:
            return list(self._channels)

    # -- sending -----------------------------------------------------------------

    def send(self, channel: JobChannel, timeout: Any = None, wait: bool = False) -> float | None:
        """Pump ``channel`` once, minding its host; return when to pump it again."""
        host = self._host(channel.spec.url)
        now = time.monotonic()
        if host.down_since is not None and now < host.next_try:
            channel.failing_since = channel.failing_since or now
            return None if self._expired(channel, host, now) else host.next_try
        if not channel.send_lock.acquire(blocking=wait):
            return now + 0.05
        try:
            next_time = channel.pump(self.http(), timeout)
        except GirderUnavailable as exc:
            _metrics.report_failed()
            now = time.monotonic()
            channel.failing_since = channel.failing_since or now
            host.failed(str(exc), now, channel.settings.retry_seconds)
            return None if self._expired(channel, host, now) else host.next_try
        finally:
            channel.send_lock.release()
        channel.failing_since = None
        now = time.monotonic()
        if host.answered(now):
            self._wake_host(host, now)
        if channel.done:
            self._forget(channel)
        return next_time

    def _run(self, lane: _Lane) -> None:
        while True:
            with self._lock:
                while True:
                    if not lane.heap:
                        if not lane.cond.wait(LANE_IDLE) and not lane.heap:
                            del self._lanes[lane.name]  # a new wake makes a new lane and thread
                            lane.thread = None
                            return
                        continue
                    when, _, channel = lane.heap[0]
                    delay = when - time.monotonic()
                    if delay > 0:
                        lane.cond.wait(delay)
                        continue
                    heapq.heappop(lane.heap)
                    if channel.scheduled_at == when:
                        channel.scheduled_at = float("inf")
                        break
            try:
                next_time = self.send(channel)
            except Exception:  # a bug must not stop every job's reports
                logger.exception("reporting to Girder job %s failed", channel.spec.job_id)
                channel.done = True
                self._forget(channel)
                continue
            if next_time is not None:
                self.wake(channel, next_time)
            elif channel.done:
                self._forget(channel)

    def _host(self, url: str) -> _Host:
        name = _host_name(url)
        host = self._hosts.get(name)
        if host is None:
            with self._lock:
                if len(self._hosts) > 1000:  # forget origins that answered
                    for key in [k for k, h in self._hosts.items() if h.down_since is None]:
                        del self._hosts[key]
                host = self._hosts.setdefault(name, _Host(name))
        return host

    def _wake_host(self, host: _Host, now: float) -> None:
        for channel in self.pending():
            if channel.origin == host.name:
                self.wake(channel, now)

    def _expired(self, channel: JobChannel, host: _Host, now: float) -> bool:
        waited = now - (channel.failing_since or now)
        if waited <= channel.settings.retry_seconds:
            return False
        channel.give_up(waited, f"{host.name}: {host.reason or 'no answer'}")
        self._forget(channel)
        return True

    def _forget(self, channel: JobChannel) -> None:
        with self._cond:
            self._channels.pop(channel, None)
            _metrics.report_backlog(len(self._channels))
            self._cond.notify_all()

    def _keep_within_budget(self) -> None:
        # Called with the lock held, only while a Girder is away.
        finished = [c for c in self._channels if c.final is not None]
        held = sum(c.log.footprint() for c in finished)
        for channel in finished:
            if held <= HELD_BUDGET:
                break
            held -= channel.log.footprint()
            channel.give_up(0, "too many reports held while Girder is away")
            self._channels.pop(channel, None)

    # -- the end -----------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every report to be sent; say what was not."""
        deadline = time.monotonic() + timeout
        for channel in self.pending():
            if not channel.done and channel.final is None and not channel.closing:
                channel.close()
        with self._cond:
            while self._channels:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            stuck = list(self._channels)
        if stuck:
            logger.error(
                "the worker stops with reports for %d Girder job(s) not delivered: %s",
                len(stuck),
                ", ".join(c.spec.job_id for c in stuck[:10]),
            )
        return not stuck


_reporter: Reporter | None = None
_reporter_lock = threading.Lock()


def reporter() -> Reporter:
    """This process's reporter, made on first use."""
    global _reporter
    if _reporter is None:
        with _reporter_lock:
            if _reporter is None:
                _reporter = Reporter()
    return _reporter


def current_reporter() -> Reporter | None:
    """This process's reporter if it has one."""
    return _reporter


def _after_fork_in_child() -> None:
    global _reporter, _reporter_lock
    _reporter = None
    _reporter_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

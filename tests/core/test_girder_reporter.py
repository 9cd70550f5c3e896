"""The reporter against FakeGirder: batching, rate limit, order, retries, bounds."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest

from girder_worker.girder._reporter import Reporter
from girder_worker.girder._rest import JobSpec, ReportSettings
from girder_worker_utils import JobStatus

from .fake_girder import TOKEN, FakeGirder


@pytest.fixture
def girder():
    fake = FakeGirder()
    yield fake
    fake.stop()


def open_channel(girder, **settings):
    reporter = Reporter()
    channel = reporter.open(JobSpec.parse(girder.spec), ReportSettings(**{"interval": 0.2, **settings}))
    return reporter, channel


def wait_done(channel, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not channel.done:
        assert time.monotonic() < deadline, f"{channel} still has reports after {timeout}s"
        time.sleep(0.01)


def test_a_run_is_running_then_its_log_then_success(girder):
    reporter, channel = open_channel(girder)
    reporter.start(channel)
    assert girder.statuses() == [JobStatus.RUNNING]

    channel.write("hello\n")
    channel.updateProgress(total=2, current=1, message="half")
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.statuses() == [JobStatus.RUNNING, JobStatus.SUCCESS]
    assert girder.log_text() == "hello\n"
    assert girder.progress == {"progressTotal": "2", "progressCurrent": "1", "progressMessage": "half"}
    assert len(girder.requests) == 3  # RUNNING, one log and progress update, SUCCESS
    assert all("log" not in r.form for r in girder.requests if "status" in r.form)
    assert all(r.token == TOKEN for r in girder.requests)


def test_log_and_progress_are_batched_at_most_once_per_interval(girder):
    reporter, channel = open_channel(girder, interval=0.25, log_limit=100_000_000)
    reporter.start(channel)
    started = time.monotonic()
    lines = 0
    while time.monotonic() - started < 1.5:
        channel.write(f"line {lines}\n")
        channel.updateProgress(total=10**9, current=lines)
        lines += 1
    finished = time.monotonic()
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    while_running = [r for r in girder.log_puts() if r.at < finished]
    assert lines > 10_000
    assert 3 <= len(while_running) <= 1.5 / 0.25 + 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(while_running)]
    assert all(gap >= 0.24 for gap in gaps), gaps
    assert girder.log_text() == "".join(f"line {i}\n" for i in range(lines))
    assert girder.progress["progressCurrent"] == str(lines - 1)


def test_a_slow_girder_never_slows_the_task_down(girder):
    reporter, channel = open_channel(girder, interval=0.01)
    reporter.start(channel)
    girder.delay = 1.0  # every answer takes a second

    started = time.perf_counter()
    for i in range(20_000):
        channel.write(f"line {i}\n")
        channel.updateProgress(total=20_000, current=i)
    channel.finish(JobStatus.SUCCESS)
    took = time.perf_counter() - started

    assert took < 0.5  # nothing in the task waited for an answer
    wait_done(channel, timeout=30)
    assert girder.log_text() == "".join(f"line {i}\n" for i in range(20_000))
    assert girder.status == JobStatus.SUCCESS


def test_the_whole_log_goes_before_the_final_status(girder):
    reporter, channel = open_channel(girder, interval=30)
    reporter.start(channel)
    channel.write("first\n")
    channel.write("last words\n")
    channel.finish(JobStatus.ERROR)
    wait_done(channel)

    last_log = max(i for i, r in enumerate(girder.requests) if "log" in r.form)
    final = next(i for i, r in enumerate(girder.requests) if r.form.get("status") == str(int(JobStatus.ERROR)))
    assert last_log < final
    assert girder.log_text() == "first\nlast words\n"


def test_what_is_written_while_a_status_is_sent_goes_before_the_final_status(girder):
    reporter, channel = open_channel(girder, interval=30)
    reporter.start(channel)
    girder.delay = 0.2  # FETCHING_INPUT is still on its way when the task writes and finishes

    channel.updateStatus(JobStatus.FETCHING_INPUT)
    time.sleep(0.1)
    channel.write("last line\n")
    channel.updateProgress(total=5, current=5, message="done")
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.status == JobStatus.SUCCESS  # by way of RUNNING: worker_handler has no FETCHING_INPUT -> SUCCESS
    assert girder.log_text() == "last line\n"
    assert girder.progress == {"progressTotal": "5", "progressCurrent": "5", "progressMessage": "done"}
    updates = [i for i, r in enumerate(girder.requests) if "log" in r.form or "progressMessage" in r.form]
    success = str(int(JobStatus.SUCCESS))
    first_success = next(i for i, r in enumerate(girder.requests) if r.form.get("status") == success)
    assert updates
    assert max(updates) < first_success


def test_a_final_status_the_task_sets_itself_waits_for_the_end_of_the_log(girder):
    reporter, channel = open_channel(girder, interval=30)
    reporter.start(channel)

    channel.updateStatus(JobStatus.SUCCESS)
    time.sleep(0.3)  # the sender has long seen it
    channel.write("written after it\n")
    channel.write("an unfinished line")  # held back until the end
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.statuses() == [JobStatus.RUNNING, JobStatus.SUCCESS]
    assert girder.log_text() == "written after it\nan unfinished line"
    assert "log" in girder.requests[-2].form


def test_success_on_a_canceling_job_ends_canceled(girder):
    reporter, channel = open_channel(girder)
    reporter.start(channel)
    girder.status = JobStatus.CANCELING  # Girder's cancel arrived after the task's last check

    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.status == JobStatus.CANCELED
    assert [r.method for r in girder.requests][-3:] == ["PUT", "GET", "PUT"]


def test_running_on_a_canceling_job_cancels_the_run(girder):
    girder.status = JobStatus.CANCELING
    reporter, channel = open_channel(girder)
    cancelled = threading.Event()
    channel.on_cancel = cancelled.set

    reporter.start(channel)

    assert cancelled.is_set()
    assert channel.cancelled_in_girder
    assert girder.status == JobStatus.CANCELING


def test_a_cancel_seen_in_an_update_answer_cancels_the_run(girder):
    reporter, channel = open_channel(girder, interval=0.05)
    cancelled = threading.Event()
    channel.on_cancel = cancelled.set
    reporter.start(channel)
    girder.status = JobStatus.CANCELING  # and the revoke was lost

    channel.write("still working\n")

    assert cancelled.wait(5)


def test_a_job_left_inactive_goes_through_queued(girder):
    girder.status = JobStatus.INACTIVE  # worker_handler: RUNNING only from QUEUED
    reporter, channel = open_channel(girder)

    reporter.start(channel)
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.status == JobStatus.SUCCESS
    assert girder.statuses() == [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCESS]


def test_failures_are_retried_without_sending_anything_twice(girder, caplog):
    reporter, channel = open_channel(girder)
    reporter.start(channel)
    girder.fail_next = 3

    channel.write("once\n")
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert girder.log_text() == "once\n"
    assert girder.status == JobStatus.SUCCESS
    outage = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(outage) == 1
    assert "HTTP 503" in outage[0].getMessage()


def test_girder_down_then_back_gets_everything_with_backoff(girder, caplog):
    reporter, channel = open_channel(girder)
    reporter.start(channel)
    girder.stop()

    for i in range(1000):
        channel.write(f"line {i}\n")
    channel.finish(JobStatus.SUCCESS)
    time.sleep(3)
    attempts = len(girder.requests)
    girder.start()
    wait_done(channel, timeout=15)

    assert girder.log_text() == "".join(f"line {i}\n" for i in range(1000))
    assert girder.status == JobStatus.SUCCESS
    messages = [r.getMessage() for r in caplog.records]
    assert sum("does not answer (connection refused)" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1
    assert attempts == 1  # only the RUNNING that got through; the refused ones never reached it


def test_reports_are_dropped_once_the_retry_window_ends(girder, caplog):
    reporter, channel = open_channel(girder, retry_seconds=0.5)
    reporter.start(channel)
    girder.stop()

    channel.finish(JobStatus.SUCCESS)
    wait_done(channel, timeout=15)

    [gave_up] = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert "final status SUCCESS was not delivered" in gave_up.getMessage()
    assert reporter.pending() == []


def test_a_refused_token_drops_the_job_once(girder, caplog):
    spec = {**girder.spec, "headers": {"Girder-Token": "expired"}}
    reporter = Reporter()
    channel = reporter.open(JobSpec.parse(spec), ReportSettings(interval=0.05))

    reporter.start(channel)
    channel.write("lost\n")
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert len(girder.requests) == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "HTTP 401" in record.getMessage()


def test_no_token_is_ever_logged(girder, caplog):
    caplog.set_level(logging.DEBUG)
    reporter, channel = open_channel(girder, retry_seconds=0.3)
    reporter.start(channel)
    girder.fail_next = 2
    channel.write("x\n")
    channel.finish(JobStatus.SUCCESS)
    wait_done(channel)

    assert caplog.records
    assert TOKEN not in caplog.text


def test_memory_and_the_stored_log_stay_bounded(girder):
    reporter, channel = open_channel(girder, log_limit=20_000, interval=60)
    reporter.start(channel)
    girder.stop()  # nothing leaves: it all has to be held

    for i in range(100_000):
        channel.write(f"flood line {i}\n")
        if i % 10_000 == 0:
            assert channel.log.footprint() <= 20_000 + 200
    channel.finish(JobStatus.SUCCESS)
    girder.start()
    wait_done(channel)

    log = girder.log_text()
    assert len(girder.log) == 1  # one entry replaced the log: head, note, tail
    assert log.startswith("flood line 0\nflood line 1\n")
    assert log.endswith("flood line 99999\n")
    assert "characters of output left out here; a job log keeps at most 20,000]\n" in log
    assert len(log) <= 20_000 + 200

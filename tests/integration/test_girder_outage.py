"""When Girder is slow or away, the task still finishes, its reports wait (bounded),
and they reach Girder when it is back; and tasks running side by side in one
process keep their logs apart."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from .girder_jobs import (
    QUEUED,
    RUNNING,
    SUCCESS,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    history,
    log_of,
    on_queue,
    schedule,
    wait_for,
    wait_started,
)
from .tcp_proxy import TcpProxy


@pytest.fixture
def proxy(girder):
    """A proxy in front of Girder, and the API URL through it."""
    parts = urllib.parse.urlsplit(girder.api_url)
    proxy = TcpProxy((parts.hostname, parts.port))
    yield proxy, f"http://127.0.0.1:{proxy.port}{parts.path}"
    proxy.cut()


def assert_whole_chatter(log: str, lines: int) -> None:
    for i in range(lines):
        assert log.count(f"chatter {i}\n") == 1, f"chatter {i} is not in the log once"
    assert log.endswith("chatter done\n")


def test_girder_paused_mid_job_gets_the_final_status_when_it_resumes(
    girder, girder_queue, env_for, start_worker, client_app, tmp_path
):
    env = env_for("rabbitmq")
    start_worker(env, *on_queue(girder_queue, "solo"))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.chatter", [str(marker), 2])
    wait_started(marker)
    wait_for(lambda: "chatter 0" in log_of(girder.get_job(job["_id"])), what="the first log line in Girder")
    result = client_app(env).AsyncResult(job["celeryTaskId"])

    with girder.paused_for():
        lines = result.get(timeout=30)  # the task finishes while Girder answers nothing
        time.sleep(1)

    done = girder.wait_for_status(job["_id"], SUCCESS, timeout=30)
    assert history(done) == [QUEUED, RUNNING, SUCCESS]
    assert_whole_chatter(log_of(done), lines)


def test_girder_unreachable_mid_job_gets_everything_when_it_is_back(
    girder, girder_queue, env_for, start_worker, client_app, proxy, tmp_path
):
    tcp, api_url = proxy
    env = env_for("rabbitmq")
    worker = start_worker({**env, "GIRDER_WORKER_API_URL": api_url}, *on_queue(girder_queue, "threads"))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.chatter", [str(marker), 2])
    wait_started(marker)
    wait_for(lambda: "chatter 0" in log_of(girder.get_job(job["_id"])), what="the first log line in Girder")
    result = client_app(env).AsyncResult(job["celeryTaskId"])

    tcp.cut()
    lines = result.get(timeout=30)
    worker.wait_for_log(r"Girder at http://127.0.0.1:\d+ does not answer \(connection refused\)")
    time.sleep(3)  # several retries, backing off
    assert girder.get_job(job["_id"])["status"] == RUNNING
    tcp.restore()

    done = girder.wait_for_status(job["_id"], SUCCESS, timeout=30)
    assert_whole_chatter(log_of(done), lines)
    assert worker.log.count("does not answer") == 1  # said once, not once per retry or line
    worker.wait_for_log(r"Girder at http://127.0.0.1:\d+ answers again")
    assert "Girder-Token" not in worker.log
    assert done["jobInfoSpec"]["headers"]["Girder-Token"] not in worker.log


def test_reports_are_dropped_after_the_retry_window(girder, girder_queue, env_for, start_worker, client_app, proxy,
                                                    tmp_path):  # fmt: skip
    tcp, api_url = proxy
    env = env_for("rabbitmq")
    worker_env = {**env, "GIRDER_WORKER_API_URL": api_url, "GIRDER_WORKER_REPORT_RETRY_SECONDS": "1"}
    worker = start_worker(worker_env, *on_queue(girder_queue, "solo"))
    marker = tmp_path / "marker"
    job = schedule(girder, girder_queue, "gwtest.chatter", [str(marker), 0.5])
    wait_started(marker)
    girder.wait_for_status(job["_id"], RUNNING)
    tcp.cut()

    assert client_app(env).AsyncResult(job["celeryTaskId"]).get(timeout=30) > 0  # the task is unaffected

    worker.wait_for_log(rf"gave up reporting to Girder job {job['_id']} after \d+ s .*: its final status SUCCESS "
                        r"was not delivered")  # fmt: skip
    tcp.restore()
    time.sleep(1)
    assert girder.get_job(job["_id"])["status"] == RUNNING


def test_tasks_running_side_by_side_keep_their_logs_apart(girder, girder_queue, env_for, start_worker, tmp_path):
    start_worker(env_for("rabbitmq"), *on_queue(girder_queue, "threads", 2))
    a, b = tmp_path / "a", tmp_path / "b"

    job_a = schedule(girder, girder_queue, "gwtest.voice", ["alice", str(a), str(b)])
    job_b = schedule(girder, girder_queue, "gwtest.voice", ["bob", str(b), str(a)])

    log_a = log_of(girder.wait_for_status(job_a["_id"], SUCCESS))
    log_b = log_of(girder.wait_for_status(job_b["_id"], SUCCESS))
    assert "bob" not in log_a
    assert "alice" not in log_b
    for name, log in (("alice", log_a), ("bob", log_b)):
        for i in range(40):
            assert f"{name} says {i}\n" in log
            assert f"girder_worker.gwtest: {name} logs {i}\n" in log

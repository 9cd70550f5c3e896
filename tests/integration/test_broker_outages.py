"""Broker restarts and long jobs, on private RabbitMQ and Redis servers and real workers.

Every test task appends "start ID PID" when it starts and "finish ID PID" when it
ends to a file, so executions are counted by the tasks themselves, whatever the
broker or the result backend says. Each test prints a summary line (run pytest
with ``-s`` to see it): submitted, executions, lost, duplicated, publish errors,
seconds to reconnect.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from ..conftest import wait_for
from .private_brokers import PrivateRabbitMQ, PrivateRedis

JOB = "gwtest.outage.job"
# The broker is unreachable (kombu), or the Redis result backend, with which the client
# subscribes to the task's result before it publishes, still is after its own retries.
CLIENT_ERRORS = (OperationalError, RuntimeError)
# One line naming the task, the server (password masked), the error and the fix (girder_worker.PublishError).
CLEAR_ERRORS = re.compile(
    r"^PublishError: task \S+ was not sent: the (broker|result backend) at \S+ is unreachable \(.*[Cc]onnection "
    r"(refused|reset by peer)\.?\); start it or fix GIRDER_WORKER_(BROKER|BACKEND), then publish the task again$"
)
CHANNEL_ERRORS = re.compile(r"PRECONDITION_FAILED|delivery acknowledgement|Channel\.close|ChannelError")


def executions(path: Path) -> Counter[str]:
    """How many times each task id started, from the tasks' own lines."""
    if not path.exists():
        return Counter()
    return Counter(line.split()[1] for line in path.read_text().splitlines() if line.startswith("start "))


def finishes(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(line.split()[1] for line in path.read_text().splitlines() if line.startswith("finish "))


@dataclass
class OutagePublisher:
    """A client thread that publishes one task a second while the broker is down."""

    app: Any
    queue: str
    runs: Path
    sent: list[Any] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # task id -> the error the client saw
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._publish, daemon=True)

    def _publish(self) -> None:
        while not self.stop.is_set():
            task_id = str(uuid.uuid4())
            try:
                self.sent.append(self.app.send_task(JOB, args=[str(self.runs), 0.1], queue=self.queue, task_id=task_id))
            except CLIENT_ERRORS as exc:  # what a client sees when its retry window ends
                self.errors[task_id] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            self.stop.wait(1.0)


def restart_mid_run(
    server: PrivateRabbitMQ | PrivateRedis,
    env: dict[str, str],
    start_worker: Any,
    client_app: Any,
    unique_queue: str,
    tmp_path: Path,
    down_seconds: float,
) -> dict[str, Any]:
    """Queue long and short tasks, restart ``server`` while they run, return the counts."""
    runs = tmp_path / "runs.txt"
    worker = start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue)
    app = client_app(env)
    submitted = [app.send_task(JOB, args=[str(runs), 6.0], queue=unique_queue) for _ in range(3)]
    submitted += [app.send_task(JOB, args=[str(runs), 0.3], queue=unique_queue) for _ in range(20)]
    wait_for(lambda: len(executions(runs)) >= 2, 60, "the first two long tasks to start")

    publisher = OutagePublisher(client_app(env), unique_queue, runs)
    server.stop()
    outage_began = time.monotonic()
    publisher.thread.start()
    time.sleep(down_seconds)
    server.start()
    back_at = time.monotonic()
    # girder-worker's Redis transport (girder_worker.broker._redis) shows under its class path.
    scheme = "amqp" if isinstance(server, PrivateRabbitMQ) else "(?:redis|girder_worker.broker._redis:Transport)"
    connected = f"Connected to {scheme}://"
    wait_for(lambda: len(re.findall(connected, worker.log)) >= 2, 120, "the worker to reconnect")
    reconnect_seconds = time.monotonic() - back_at
    publisher.stop.set()
    publisher.thread.join(timeout=30)

    submitted += publisher.sent
    for result in submitted:
        assert result.get(timeout=180) == result.id  # every accepted task has its final result
        assert result.state == "SUCCESS"
    after = app.send_task(JOB, args=[str(runs), 0.0], queue=unique_queue)
    assert after.get(timeout=60) == after.id  # the worker still serves

    counts = executions(runs)
    ids = [r.id for r in submitted]
    summary = {
        "submitted": len(ids),
        "executions": sum(counts[i] for i in ids),
        "lost": sum(1 for i in ids if counts[i] == 0),
        "duplicated": sum(1 for i in ids if counts[i] > 1),
        "publish_errors": len(publisher.errors),
        "errored_but_ran": sum(1 for i in publisher.errors if counts[i]),
        "published_during_outage": len(publisher.sent),
        "outage_seconds": round(back_at - outage_began, 1),
        "reconnect_seconds_after_start": round(reconnect_seconds, 1),
        "server_start_seconds": [round(s, 1) for s in server.start_seconds],
        "server_stop_seconds": [round(s, 1) for s in server.stop_seconds],
    }
    print(f"\n{type(server).__name__} restart: {summary}\nclient errors: {sorted(set(publisher.errors.values()))}")
    assert summary["lost"] == 0, summary
    assert summary["duplicated"] == 0, (summary, counts)
    assert all(finishes(runs)[i] == 1 for i in ids)
    for error in publisher.errors.values():
        assert CLEAR_ERRORS.search(error), error
    assert "Connection to broker lost" in worker.log
    return summary


def test_rabbitmq_restart_mid_run_loses_and_repeats_nothing(
    private_rabbitmq, private_redis, start_worker, client_app, unique_queue, tmp_path
):
    rabbitmq = private_rabbitmq()
    redis = private_redis()
    env = {"GIRDER_WORKER_BROKER": rabbitmq.url, "GIRDER_WORKER_BACKEND": redis.url}
    restart_mid_run(rabbitmq, env, start_worker, client_app, unique_queue, tmp_path, down_seconds=14)


def test_redis_restart_mid_run_loses_and_repeats_nothing(
    private_redis, start_worker, client_app, unique_queue, tmp_path
):
    redis = private_redis()
    env = {"GIRDER_WORKER_BROKER": redis.url}
    restart_mid_run(redis, env, start_worker, client_app, unique_queue, tmp_path, down_seconds=22)


@pytest.mark.long
@pytest.mark.timeout(360)
def test_job_longer_than_the_broker_timeouts_runs_once(
    private_rabbitmq, private_redis, start_worker, client_app, unique_queue, tmp_path
):
    """90 s jobs against RabbitMQ's consumer_timeout and Redis's visibility_timeout, both 30 s."""
    rabbitmq = private_rabbitmq(consumer_timeout_ms=30_000)
    assert "{consumer_timeout,30000}" in rabbitmq.ctl("environment").stdout  # the node enforces it
    redis = private_redis()
    envs = {
        "rabbitmq": {"GIRDER_WORKER_BROKER": rabbitmq.url, "GIRDER_WORKER_BACKEND": redis.url.replace("/0", "/1")},
        "redis": {
            "GIRDER_WORKER_BROKER": redis.url,
            "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": '{"visibility_timeout": 30}',
        },
    }
    runs = tmp_path / "runs.txt"
    workers = {name: start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue) for name, env in envs.items()}
    results = {
        name: client_app(env).send_task(JOB, args=[str(runs), 90.0], queue=unique_queue) for name, env in envs.items()
    }

    for name, result in results.items():
        assert result.get(timeout=240) == result.id, name
        assert result.state == "SUCCESS"
    counts = executions(runs)
    summary = {name: counts[result.id] for name, result in results.items()}
    print(f"\nlong jobs, executions per broker: {summary}")
    assert summary == {"rabbitmq": 1, "redis": 1}
    assert all(finishes(runs)[r.id] == 1 for r in results.values())
    for name, worker in workers.items():
        assert not CHANNEL_ERRORS.search(worker.log), f"{name} worker:\n{worker.log}"
        assert "Connection to broker lost" not in worker.log, f"{name} worker:\n{worker.log}"

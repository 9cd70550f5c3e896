"""A running task holds no unacknowledged message, whatever the pool.

The broker's timeouts for unacknowledged messages (RabbitMQ's consumer_timeout,
30 minutes by default; Redis's visibility_timeout, 1 hour) then never reach a
long job: these tests look at what the broker itself holds while a task runs.

On RabbitMQ a worker that the task fills (here ``-c 1``) holds back that one
acknowledgement for at most ``HOLD_SECONDS`` (fair dispatch, docs/dispatch.rst),
so the tests give the acknowledgement that long and run the task longer.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from girder_worker.broker._dispatch import HOLD_SECONDS

from ..conftest import REDIS_URL, wait_for

POOLS = ("solo", "prefork", "threads")


def rabbitmq_unacknowledged(queue: str) -> int:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.fail("rabbitmqctl is not on PATH; the test reads the queue's unacknowledged count with it")
    out = subprocess.run(
        [rabbitmqctl, "list_queues", "-q", "name", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    counts = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
    return int(counts[queue])


def redis_unacknowledged(task_id: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(task_id.encode() in value for value in client.hvals("unacked"))
    finally:
        client.close()


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_a_running_task_holds_no_unacknowledged_message(
    broker, pool, env_for, start_worker, queue_app, unique_queue, tmp_path
):
    env = env_for(broker)
    start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    seconds = HOLD_SECONDS + 4.0 if broker == "rabbitmq" else 4.0
    result = app.send_task("gwtest.delivery.record", args=[str(log), seconds], queue=unique_queue)
    wait_for(lambda: log.exists(), what="the run to start")

    if broker == "rabbitmq":
        held = wait_for(
            lambda: rabbitmq_unacknowledged(unique_queue) == 0 or None, HOLD_SECONDS + 2.0, "the acknowledgement"
        )
    else:
        held = wait_for(lambda: redis_unacknowledged(result.id) == 0 or None, 3.0, "the acknowledgement")
    assert held
    assert result.state == "STARTED"  # still running: the acknowledgement did not wait for its end
    assert result.get(timeout=30)

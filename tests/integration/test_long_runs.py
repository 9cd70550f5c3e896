"""A running task holds no unacknowledged message, whatever the pool.

The broker's timeouts for unacknowledged messages (RabbitMQ's consumer_timeout,
30 minutes by default; Redis's visibility_timeout, 1 hour) then never reach a
long job: these tests look at what the broker itself holds while a task runs.

On RabbitMQ a worker that the task fills (here ``-c 1``) holds back that one
acknowledgement for at most ``HOLD_SECONDS`` (fair dispatch, docs/dispatch.rst),
so the tests give the acknowledgement that long and run the task longer. A solo
worker, on any broker, holds a run's acknowledgement for at most its own, shorter
hold (``girder_worker.broker._solo_acks.HOLD_SECONDS``, 1 s).
"""

from __future__ import annotations

import pytest

from girder_worker.broker._dispatch import HOLD_SECONDS

from ..conftest import wait_for
from .unacked import rabbitmq_unacknowledged, redis_unacknowledged

POOLS = ("solo", "prefork", "threads")


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


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_a_solo_workers_short_tasks_leave_nothing_unacknowledged(
    broker, env_for, start_worker, queue_app, unique_queue
):
    """A solo worker writes a short run's acknowledgement when the run ends (not at its start,
    nor a second in, which a short run never reaches): after a burst the broker holds none."""
    env = env_for(broker)
    start_worker(env, "-P", "solo", "-Q", unique_queue)
    app = queue_app(env)

    results = [app.send_task("gwtest.add", args=[i, 1], queue=unique_queue) for i in range(10)]
    assert [r.get(timeout=30) for r in results] == [i + 1 for i in range(10)]

    if broker == "rabbitmq":
        wait_for(lambda: rabbitmq_unacknowledged(unique_queue) == 0 or None, 5.0, "the acknowledgements")
    else:
        wait_for(lambda: sum(map(redis_unacknowledged, (r.id for r in results))) == 0 or None, 5.0, "the acks")

"""Tasks whose worker dies under them: real workers, real kills, counted executions.

Each test task appends "start ID PID" to a file when a run starts, so the tests
count how many times a task really ran, and which process ran it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from girder_worker.delivery._leases import lease_store_for
from girder_worker_utils import TaskLost

from ..conftest import wait_for
from .girder_jobs import ERROR, SUCCESS, girder_queue_fixture, log_of, on_queue, schedule  # noqa: F401
from .unacked import rabbitmq_unacknowledged, redis_unacknowledged

AT_LEAST_ONCE, AT_MOST_ONCE = "at-least-once", "at-most-once"


def starts(log: Path, task_id: str) -> list[int]:
    """The pids of the runs of ``task_id`` so far, in order."""
    if not log.exists():
        return []
    prefix = f"start {task_id} " if task_id else "start "
    return [int(line.split()[2]) for line in log.read_text().splitlines() if line.startswith(prefix)]


def wait_final(result, timeout=60.0) -> str:
    return wait_for(lambda: result.state if result.state in ("SUCCESS", "FAILURE") else None, timeout, "a final state")


@pytest.fixture
def delivery_env(env_for):
    def make(broker: str, policy: str, **extra: str) -> dict[str, str]:
        env = env_for(broker)
        env.update(
            GIRDER_WORKER_DELIVERY=policy,
            GIRDER_WORKER_MAX_DELIVERIES="2",
            GIRDER_WORKER_LEASE_SECONDS="2",
            **extra,
        )
        return env

    return make


def test_a_pool_process_killed_mid_task_runs_the_task_again(
    broker, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    env = delivery_env(broker, AT_LEAST_ONCE)
    worker = start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.record", args=[str(log), 2.0], queue=unique_queue)
    first = wait_for(lambda: starts(log, result.id), what="the first run")[0]
    os.kill(first, signal.SIGKILL)

    assert result.get(timeout=60) != first
    runs = starts(log, result.id)
    assert runs == [first, runs[1]]
    assert runs[1] != first
    assert log.read_text().count(f"end {result.id} ") == 1
    worker.wait_for_log(
        rf"record\[{result.id}\] was lost \(its pool process died \(signal 9 \(SIGKILL\)\)\); "
        r"delivered again \(delivery 2 of 2\)"
    )
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5


@pytest.mark.parametrize(
    ("policy", "runs", "reason"),
    [
        (AT_LEAST_ONCE, 2, "worker lost 2 times (at-least-once, max_deliveries 2)"),
        (AT_MOST_ONCE, 1, "worker lost once (at-most-once)"),
    ],
)
def test_a_task_killed_at_every_run_fails_after_its_policy_allows(
    policy, runs, reason, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    env = delivery_env("redis", policy)
    worker = start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.record", args=[str(log), 30.0], queue=unique_queue)
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while result.state != "FAILURE" and time.monotonic() < deadline:
        for pid in set(starts(log, result.id)) - killed:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.02)

    assert result.state == "FAILURE"
    assert type(result.result).__name__ == "TaskLost"
    assert str(result.result) == reason
    assert len(starts(log, result.id)) == runs == len(killed)
    worker.wait_for_log(rf"record\[{result.id}\] was lost .*: {reason.replace('(', '.').replace(')', '.')}; it failed")
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5


def test_a_task_that_always_kills_its_process_stops_after_its_max_deliveries(
    delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    env = delivery_env("embedded", AT_LEAST_ONCE)  # the task declares max_deliveries=3
    start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.crash", args=[str(log)], queue=unique_queue)

    assert wait_final(result) == "FAILURE"
    assert str(result.result) == "worker lost 3 times (at-least-once, max_deliveries 3)"
    assert len(starts(log, result.id)) == 3
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5


@pytest.mark.parametrize(
    ("broker", "policy", "task", "state", "runs"),
    [
        ("embedded", AT_LEAST_ONCE, "gwtest.delivery.record", "SUCCESS", 2),
        ("rabbitmq", AT_LEAST_ONCE, "gwtest.delivery.record", "SUCCESS", 2),
        ("redis", AT_LEAST_ONCE, "gwtest.delivery.record", "SUCCESS", 2),
        ("redis", AT_MOST_ONCE, "gwtest.delivery.record", "FAILURE", 1),
        ("redis", AT_LEAST_ONCE, "gwtest.delivery.record_once", "FAILURE", 1),  # the task's own declaration wins
    ],
)
def test_a_whole_worker_killed_mid_task_is_seen_by_the_next_worker(
    broker, policy, task, state, runs, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    env = delivery_env(broker, policy)
    first = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"first-{unique_queue}@%h")
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task(task, args=[str(log), 3.0], queue=unique_queue)
    wait_for(lambda: starts(log, result.id), what="the first run")
    # A solo worker holds a run's acknowledgement for its first second (girder_worker.broker.
    # _solo_acks); killed meanwhile, it leaves the message to the broker: see the next test.
    acknowledged(broker, unique_queue, result.id)
    first.stop(sig=signal.SIGKILL)  # the whole worker, as the kernel's out-of-memory killer would
    died = time.monotonic()
    second = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"second-{unique_queue}@%h")

    assert wait_final(result) == state
    elapsed = time.monotonic() - died
    print(f"\n{broker} {policy} {task}: worker death to {state} in {elapsed:.1f} s")
    assert len(starts(log, result.id)) == runs
    if state == "FAILURE":
        assert str(result.result).startswith("worker lost once (at-most-once)")
        second.wait_for_log(r"was lost \(its worker \S+ stopped answering\): worker lost once")
    else:
        second.wait_for_log(r"was lost \(its worker \S+ stopped answering\); delivered again")


@pytest.mark.parametrize(("policy", "state", "runs"), [(AT_LEAST_ONCE, "SUCCESS", 2), (AT_MOST_ONCE, "FAILURE", 1)])
def test_a_solo_worker_killed_before_it_acknowledged_leaves_the_message_to_the_next_worker(
    policy, state, runs, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    # A solo worker writes a run's acknowledgement when the run ends, or one second in
    # (girder_worker.broker._solo_acks). Killed before, it leaves the message unacknowledged, and
    # RabbitMQ delivers it again to the next worker at once; the lease sees the earlier run lost.
    env = delivery_env("rabbitmq", policy)
    first = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"first-{unique_queue}@%h")
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.record", args=[str(log), 3.0], queue=unique_queue)
    wait_for(lambda: starts(log, result.id), timeout=30, what="the first run")
    first.stop(sig=signal.SIGKILL)
    second = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"second-{unique_queue}@%h")

    assert wait_final(result, timeout=90) == state
    assert len(starts(log, result.id)) == runs
    # Either RabbitMQ's delivery reached it after the first worker's heartbeat lapsed (the lease
    # counts the delivery) or before (a duplicate, dropped; the lease is then taken over).
    lost = (
        r"was delivered again after its worker first-\S+ was lost: delivery 2 of 2"
        r"|was lost \(its worker first-\S+ stopped answering\); delivered again"
        if policy == AT_LEAST_ONCE
        else r"was lost with its worker before: worker lost once"
        r"|was lost \(its worker first-\S+ stopped answering\): worker lost once"
    )
    second.wait_for_log(lost)
    assert rabbitmq_unacknowledged(unique_queue) == 0


def acknowledged(broker: str, queue: str, task_id: str) -> None:
    """Wait until the broker counts ``task_id``'s message acknowledged (nothing to wait for on
    the embedded broker, whose messages are taken by the worker that reads them)."""
    if broker == "rabbitmq":
        wait_for(lambda: rabbitmq_unacknowledged(queue) == 0, timeout=15, what="the acknowledgement")
    elif broker == "redis":
        wait_for(lambda: redis_unacknowledged(task_id) == 0, timeout=15, what="the acknowledgement")


# gwtest.delivery.record's run claims its lease itself, in its process; record_plain, on
# Celery's own task class, has its lease claimed by the worker's main process.
@pytest.mark.parametrize("name", ["gwtest.delivery.record", "gwtest.delivery.record_plain"])
def test_a_duplicate_delivery_of_a_running_task_is_dropped(
    name, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    # What Redis's visibility timeout or a lost acknowledgement would do: the same
    # message (same task id) arrives again while the task runs on another worker.
    env = delivery_env("redis", AT_LEAST_ONCE)
    workers = [start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"w{i}-{unique_queue}@%h") for i in (1, 2)]
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task(name, args=[str(log), 2.0], queue=unique_queue)
    wait_for(lambda: starts(log, result.id), what="the first run")
    app.send_task(name, args=[str(log), 2.0], queue=unique_queue, task_id=result.id)

    assert result.get(timeout=30)
    wait_for(lambda: any("the duplicate was dropped" in w.log for w in workers), what="the duplicate to be dropped")
    assert len(starts(log, result.id)) == 1
    # ...and once it has finished, a late duplicate is dropped too.
    app.send_task(name, args=[str(log), 2.0], queue=unique_queue, task_id=result.id)
    wait_for(lambda: sum(w.log.count("the duplicate was dropped") for w in workers) == 2, what="a second drop")
    assert len(starts(log, result.id)) == 1


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_a_late_duplicate_of_a_failed_task_leaves_its_failure(
    broker, delivery_env, start_worker, queue_app, unique_queue
):
    # The duplicate is dropped before Celery would store its STARTED over the failure, for good.
    env = delivery_env(broker, AT_LEAST_ONCE)
    worker = start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    failed = app.send_task("gwtest.fail", args=["no"], queue=unique_queue)
    with pytest.raises(ValueError, match=r"^no$"):
        failed.get(timeout=30)
    time.sleep(1)  # the worker releases leases every 0.2 s: the task is then finished for every worker

    app.send_task("gwtest.fail", args=["no"], queue=unique_queue, task_id=failed.id)
    wait_for(lambda: "after it finished; the duplicate was dropped" in worker.log, what="the duplicate's drop")
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5  # ran after it
    assert app.AsyncResult(failed.id).state == "FAILURE"


@pytest.mark.parametrize(("broker", "pool"), [("redis", "prefork"), ("embedded", "solo")])
def test_a_message_delivered_again_after_its_lost_run_is_failed_without_running(
    broker, pool, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    # What a broker's redelivery after a lost worker would bring: the task's lease says a
    # run started under a worker that no longer beats, and its at-most-once policy allows
    # no second start. (A long lease keeps the worker's reaper away from that lease.)
    env = {**delivery_env(broker, AT_MOST_ONCE), "GIRDER_WORKER_LEASE_SECONDS": "60"}
    worker = start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"
    task_id = str(uuid.uuid4())
    lease_store_for(app).claim(task_id, "gone-worker/1", {"body": "its message"})

    result = app.send_task("gwtest.delivery.record_once", args=[str(log), 0.0], queue=unique_queue, task_id=task_id)

    assert wait_final(result) == "FAILURE"
    assert isinstance(result.result, TaskLost), result.result
    assert str(result.result) == "worker lost once (at-most-once)"
    assert f"task gwtest.delivery.record_once[{task_id}] was lost with its worker before: worker lost once" in (
        worker.log
    )
    assert starts(log, task_id) == []


@pytest.mark.parametrize(("broker", "pool"), [("redis", "prefork"), ("embedded", "solo")])
def test_a_retried_task_runs_again_as_a_new_delivery(
    broker, pool, delivery_env, start_worker, queue_app, unique_queue, tmp_path
):
    # self.retry() publishes the run's message again, with the run's own headers: the lease the
    # worker handed the run must not travel with it (the worker refuses a message carrying one).
    env = delivery_env(broker, AT_MOST_ONCE)
    worker = start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.retry_once", args=[str(log)], queue=unique_queue)

    retries, worker_headers = result.get(timeout=30)
    assert retries == 1
    assert set(worker_headers) <= {"girder_worker_sent_at"}, worker_headers
    assert len(starts(log, result.id)) == 2  # at-most-once: a retry is no loss, and no duplicate
    assert "rejected task" not in worker.log
    assert "the duplicate was dropped" not in worker.log


def test_girder_jobs_say_what_became_of_a_lost_task(girder, girder_queue, env_for, start_worker, tmp_path):
    env = env_for("rabbitmq")
    env.update(GIRDER_WORKER_MAX_DELIVERIES="2")
    start_worker(env, *on_queue(girder_queue, "prefork", 2))
    again_log, once_log = tmp_path / "again.txt", tmp_path / "once.txt"

    again = schedule(girder, girder_queue, "gwtest.delivery.record", [str(again_log), 1.0])
    once = schedule(girder, girder_queue, "gwtest.delivery.record_once", [str(once_log), 30.0])
    for log in (again_log, once_log):
        pid = wait_for(lambda log=log: log.exists() and log.read_text().split()[2], what="a run")
        os.kill(int(pid), signal.SIGKILL)

    done = girder.wait_for_status(again["_id"], SUCCESS)
    assert "was lost (its pool process died (signal 9 (SIGKILL))); it was delivered again (delivery 2 of 2)" in (
        log_of(done)
    )
    failed = girder.wait_for_status(once["_id"], ERROR)
    assert log_of(failed).endswith("girder-worker: worker lost once (at-most-once); the job failed\n")


def test_the_girder_job_of_a_task_whose_whole_worker_died_ends_error(
    girder, girder_queue, env_for, start_worker, tmp_path
):
    env = {**env_for("rabbitmq"), "GIRDER_WORKER_LEASE_SECONDS": "2"}
    first = start_worker(env, *on_queue(girder_queue, "solo"), "-n", f"first-{girder_queue}@%h")
    log = tmp_path / "once.txt"

    job = schedule(girder, girder_queue, "gwtest.delivery.record_once", [str(log), 30.0])
    wait_for(lambda: starts(log, ""), what="the run")  # any id: the only run
    acknowledged("rabbitmq", girder_queue, "")  # after its first second: the lease's loss, not a redelivery
    first.stop(sig=signal.SIGKILL)
    start_worker(env, *on_queue(girder_queue, "solo"), "-n", f"second-{girder_queue}@%h")

    failed = girder.wait_for_status(job["_id"], ERROR)
    assert log_of(failed).endswith("girder-worker: worker lost once (at-most-once); the job failed\n")


def test_dropped_duplicates_leave_the_pool_its_slots(delivery_env, start_worker, queue_app, unique_queue, tmp_path):
    env = delivery_env("redis", AT_LEAST_ONCE)  # an event-loop broker: the pool's slots are counted
    worker = start_worker(env, "-P", "prefork", "-c", "1", "-Q", unique_queue)
    app = queue_app(env)
    log = tmp_path / "runs.txt"

    result = app.send_task("gwtest.delivery.record", args=[str(log), 0.0], queue=unique_queue)
    result.get(timeout=30)
    for _ in range(3):
        app.send_task("gwtest.delivery.record", args=[str(log), 0.0], queue=unique_queue, task_id=result.id)
    wait_for(lambda: worker.log.count("the duplicate was dropped") == 3, what="three drops")

    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5
    assert len(starts(log, result.id)) == 1


def test_the_worker_warns_at_start_about_settings_that_contradict_the_policy(start_worker, env_for, tmp_path):
    (tmp_path / "contradicting_tasks.py").write_text(
        "from girder_worker_utils import task\n\n\n"
        "@task(name='late.render', acks_late=True, time_limit=7200)\n"
        "def render():\n    return 1\n\n\n"
        "@task(name='odd.policy', delivery='sometimes', max_deliveries=0)\n"
        "def odd():\n    return 2\n"
    )
    env = {**env_for("redis"), "PYTHONPATH": str(tmp_path)}
    worker = start_worker(env, "-P", "solo", "--include", "contradicting_tasks", plugins=())

    log = worker.log
    assert "tasks late.render acknowledge late (acks_late): their message stays unacknowledged" in log
    assert "tasks late.render acknowledge late without task_reject_on_worker_lost" in log
    assert (
        "task late.render acknowledges late and has a time limit of 7200 s, more than the Redis broker's "
        "visibility_timeout (3600 s): a longer run is delivered twice; drop acks_late"
    ) in log
    assert "task odd.policy declares delivery='sometimes', which is no delivery policy" in log
    assert "task odd.policy declares max_deliveries=0; it gets the worker's default (use an integer >= 1)" in log

"""Every ``celery inspect`` and ``celery control`` command against a real girder-worker worker.

The commands go through ``app.control`` and ``app.control.inspect()``, the API
behind Celery's command line (which ``test_control_cli.py`` runs); each test asserts
the answer a user reads and what the command did. docs/monitoring.rst says what
each command does with girder-worker.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from ..conftest import wait_for
from .test_bad_messages import QUIET


@pytest.fixture
def one_worker(env_for, start_worker, queue_app, unique_queue, tmp_path):
    """A prefork worker with 2 processes on Redis, its name, and a client app."""
    env = env_for("redis")
    name = f"{unique_queue}@{os.uname().nodename}"
    worker = start_worker(env, "-P", "prefork", "-c", "2", "-Q", unique_queue, "-n", name, *QUIET)
    return worker, name, queue_app(env)


def queues(inspect: Any, name: str) -> list[str]:
    """The names of the queues worker ``name`` consumes from, as it answers ``inspect active_queues``."""
    return [q["name"] for q in (inspect.active_queues() or {}).get(name, [])]


def _reply(answers: list[dict[str, Any]] | None, name: str) -> Any:
    assert answers, "no worker answered"
    return next(a[name] for a in answers if name in a)


def test_inspect_commands_answer_with_what_the_worker_holds(one_worker, unique_queue, tmp_path):
    _worker, name, app = one_worker
    inspect = app.control.inspect(destination=[name], timeout=5)
    marker = tmp_path / "marker"
    running = app.send_task("gwtest.cooperative", args=[str(marker)], queue=unique_queue)
    wait_for(marker.exists, what="the task to start")
    later = app.send_task("gwtest.add", args=[1, 2], queue=unique_queue, countdown=300)

    assert _reply(app.control.ping(destination=[name], timeout=5), name) == {"ok": "pong"}
    active = inspect.active()[name]
    assert [(t["id"], t["name"]) for t in active] == [(running.id, "gwtest.cooperative")]
    wait_for(lambda: inspect.scheduled()[name], what="the countdown task among the scheduled")
    assert [s["request"]["id"] for s in inspect.scheduled()[name]] == [later.id]
    assert inspect.reserved()[name] == [] or all(r["id"] != running.id for r in inspect.reserved()[name])
    assert {"gwtest.add", "gwtest.cooperative"} <= set(inspect.registered()[name])
    stats = inspect.stats()[name]
    assert stats["pool"]["max-concurrency"] == 2
    query = inspect.query_task(running.id)[name]
    assert query[running.id][0] == "active"

    app.control.revoke([running.id, later.id], destination=[name])

    wait_for(lambda: running.state == "REVOKED", what="the running task REVOKED")
    assert {running.id, later.id} <= set(inspect.revoked()[name])


def test_revoke_with_and_without_terminate(one_worker, unique_queue, tmp_path):
    worker, name, app = one_worker
    polite, stubborn = tmp_path / "polite", tmp_path / "stubborn"
    cooperative = app.send_task("gwtest.cooperative", args=[str(polite)], queue=unique_queue)
    # Ignores its cancel; its grace period is 1 s, but --terminate does not wait for it.
    ignoring = app.send_task("gwtest.stubborn", args=[str(stubborn)], queue=unique_queue)
    wait_for(lambda: polite.exists() and stubborn.exists(), what="both tasks to start")

    reply = app.control.revoke(cooperative.id, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": f"tasks {cooperative.id} flagged as revoked"}
    wait_for(lambda: cooperative.state == "REVOKED", what="the cooperative task REVOKED")
    assert polite.read_text() == "saw cancel"

    app.control.revoke(ignoring.id, destination=[name], terminate=True, signal="SIGKILL")
    wait_for(lambda: ignoring.state == "REVOKED", what="the stubborn task REVOKED")
    worker.wait_for_log(rf"task gwtest\.stubborn\[{ignoring.id}\] did not stop .*: terminated its pool process")
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5


def test_control_commands_change_the_running_worker(one_worker, unique_queue, tmp_path):
    worker, name, app = one_worker
    control = app.control
    inspect = control.inspect(destination=[name], timeout=5)

    reply = control.rate_limit("gwtest.add", "100/m", destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "new rate limit set successfully"}
    assert "rate_limit=100/m" in str(inspect.registered("rate_limit")[name])

    reply = control.time_limit("gwtest.sleep", soft=1, hard=2, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "time limits set successfully"}
    limited = app.send_task("gwtest.sleep", args=[60], queue=unique_queue)
    wait_for(lambda: limited.state == "FAILURE", what="the sleep to hit its new time limit")
    # gwtest.sleep never looks at its cancel flag: told at 1 s, terminated at 2 s.
    assert type(limited.result).__name__ == "TimeLimitExceeded"
    assert "hard time limit (2 s) exceeded" in str(limited.result)
    worker.wait_for_log(rf"gwtest\.sleep\[{limited.id}\]: soft time limit \(1 s\) exceeded; the task was cancelled")

    extra = unique_queue + "-extra"
    reply = control.add_consumer(extra, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": f"add consumer {extra}"}
    # Celery's add_consumer answers at once and adds the queue in the event loop's next turn
    # (call_soon): an inspect read in the same turn does not see it yet.
    wait_for(lambda: extra in queues(inspect, name), what=f"the worker to consume from {extra}")
    assert app.send_task("gwtest.add", args=[2, 2], queue=extra).get(timeout=30) == 4
    reply = control.cancel_consumer(extra, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": f"no longer consuming from {extra}"}
    wait_for(lambda: extra not in queues(inspect, name), what=f"the worker to stop consuming from {extra}")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(extra)

    reply = control.pool_grow(1, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "pool will grow"}
    wait_for(lambda: len(inspect.stats()[name]["pool"]["processes"]) == 3, what="3 pool processes")
    reply = control.pool_shrink(1, destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "pool will shrink"}
    wait_for(lambda: len(inspect.stats()[name]["pool"]["processes"]) == 2, what="2 pool processes")

    reply = control.enable_events(destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "task events enabled"}
    reply = control.disable_events(destination=[name], reply=True, timeout=5)
    assert _reply(reply, name) == {"ok": "task events disabled"}

    control.shutdown(destination=[name])
    assert worker.wait_exit(timeout=30) == 0

"""The delivery policy's arithmetic, on the real lease stores and the real embedded broker.

A worker that stops answering leaves its running task's lease behind; another
worker's :meth:`Delivery.reap` takes it over and either publishes the task again
or fails it. These tests play the lost workers by claiming leases under holders
that never beat, so every boundary (the last redelivery, the first refusal, a
task's own ``max_deliveries``, at-most-once) is checked without killing anything.
The end-to-end fault tests with real kills are in tests/integration/test_delivery.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection

from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker.delivery._delivery import Delivery, policy_for
from girder_worker.delivery._leases import (
    DATABASE_NAME,
    DONE_RETENTION_SECONDS,
    Claim,
    RedisLeaseStore,
    SqliteLeaseStore,
)

REDIS_DB = 14


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(tmp_path, **env: str):
    return create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), **env}))


@pytest.fixture
def stores(store_kind, tmp_path) -> Iterator[object]:
    if store_kind == "sqlite":
        yield SqliteLeaseStore(tmp_path / "leases")
        return
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    before = set(client.keys("girder_worker:*"))
    yield RedisLeaseStore(client)
    for key in set(client.keys("girder_worker:*")) - before:
        client.delete(key)


def message_for(task_id: str, task: str = "gwtest.lost") -> dict[str, object]:
    return {
        "body": json.dumps([[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]),
        "base64": False,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"id": task_id, "task": task, "retries": 0, "lang": "py"},
        "properties": {},
        "exchange": "",
        "routing_key": "celery",
    }


def lose(store, task_id: str, message: dict[str, object]) -> int:
    """A worker that never beats claims the task, as a run that starts and then dies."""
    holder = f"lost-{uuid.uuid4().hex[:6]}/x"
    claim = store.claim(task_id, holder, message)
    return claim.deliveries


def published(app) -> list[str]:
    """Ids of the task messages waiting in the embedded broker's celery queue."""
    ids = []
    conf = app.conf
    connection = Connection(conf.broker_url, transport=conf.broker_transport,
                            transport_options=conf.broker_transport_options)  # fmt: skip
    with connection as conn, conn.SimpleQueue("celery") as queue:
        while True:
            try:
                received = queue.get(timeout=0.2)
            except queue.Empty:
                return ids
            ids.append(received.headers["id"])
            received.ack()


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_at_least_once_delivers_again_until_max_deliveries_then_fails(tmp_path, stores, limit):
    app = make_app(tmp_path, GIRDER_WORKER_MAX_DELIVERIES=str(limit))
    delivery = Delivery(app, "survivor", stores)
    task_id = str(uuid.uuid4())
    message = message_for(task_id)

    for run in range(1, limit):
        assert lose(stores, task_id, message) == run
        assert delivery.reap() == 1
        assert published(app) == [task_id], f"lost run {run} of {limit} must be delivered again"
        assert app.AsyncResult(task_id).state == "PENDING"

    assert lose(stores, task_id, message) == limit
    assert delivery.reap() == 1
    assert published(app) == []
    result = app.AsyncResult(task_id)
    assert result.state == "FAILURE"
    times = "once" if limit == 1 else f"{limit} times"
    assert str(result.result) == f"worker lost {times} (at-least-once, max_deliveries {limit})"
    assert delivery.reap() == 0  # the failed task's lease is released: nobody takes it again


def test_at_most_once_fails_the_first_lost_run(tmp_path, stores):
    app = make_app(tmp_path, GIRDER_WORKER_DELIVERY="at-most-once", GIRDER_WORKER_MAX_DELIVERIES="5")
    delivery = Delivery(app, "survivor", stores)
    task_id = str(uuid.uuid4())

    lose(stores, task_id, message_for(task_id))
    assert delivery.reap() == 1

    assert published(app) == []
    assert str(app.AsyncResult(task_id).result) == "worker lost once (at-most-once)"


def test_a_tasks_own_max_deliveries_wins_over_the_workers(tmp_path, stores):
    app = make_app(tmp_path, GIRDER_WORKER_MAX_DELIVERIES="1")

    @app.task(name="gwtest.patient", max_deliveries=2, shared=False)
    def patient() -> None:
        """A task that may start twice."""

    assert policy_for(patient, app.girder_worker_config).limit == 2
    delivery = Delivery(app, "survivor", stores)
    task_id = str(uuid.uuid4())
    message = message_for(task_id, task="gwtest.patient")

    lose(stores, task_id, message)
    delivery.reap()
    assert published(app) == [task_id]
    lose(stores, task_id, message)
    delivery.reap()
    assert published(app) == []
    assert str(app.AsyncResult(task_id).result) == "worker lost 2 times (at-least-once, max_deliveries 2)"


def test_a_lease_whose_holder_beats_is_not_taken(tmp_path, stores):
    app = make_app(tmp_path)
    delivery = Delivery(app, "survivor", stores)
    task_id = str(uuid.uuid4())
    stores.heartbeat("busy/x", 60)
    stores.claim(task_id, "busy/x", message_for(task_id))

    assert delivery.reap() == 0
    assert published(app) == []
    assert app.AsyncResult(task_id).state == "PENDING"


def _claims_of_one_task(store: SqliteLeaseStore, task_id: str, holders: list[str]) -> list[str]:
    """Claim ``task_id`` for each holder at once, in threads; the holders that won."""
    import threading

    start = threading.Barrier(len(holders))
    won: list[str] = []

    def claim(holder: str) -> None:
        start.wait()
        if store.claim(task_id, holder, {"body": "[[1, 2], {}, {}]"}).duplicate_of is None:
            won.append(holder)

    threads = [threading.Thread(target=claim, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_the_threads_of_one_process_claim_a_lease_one_at_a_time(tmp_path):
    # They share the process's one connection to the lease database.
    store = SqliteLeaseStore(tmp_path / "leases")
    holders = [f"w{i}@host/{i}" for i in range(8)]
    for holder in holders:
        store.heartbeat(holder, 60)
    for round_ in range(20):
        assert len(_claims_of_one_task(store, f"task-{round_}", holders)) == 1


def _holder_of(store: SqliteLeaseStore, task_id: str) -> str:
    return str(store._db().execute("SELECT holder FROM lease WHERE task_id = ?", (task_id,)).fetchone()[0])


def test_a_forked_process_claims_a_lease_against_its_parent(tmp_path):
    import multiprocessing

    store = SqliteLeaseStore(tmp_path / "leases")
    for holder in ("parent@host/1", "child@host/2"):
        store.heartbeat(holder, 60)
    store.claim("warm", "parent@host/1", {"body": "[]"})  # the parent's connection is open before the fork
    ids = [f"task-{i}" for i in range(300)]
    context = multiprocessing.get_context("fork")
    ready = context.Event()

    def child() -> None:
        ready.wait()
        for task_id in ids:
            store.claim(task_id, "child@host/2", {"body": "[]"})

    process = context.Process(target=child)
    process.start()
    ready.set()
    mine = [task_id for task_id in ids if store.claim(task_id, "parent@host/1", {"body": "[]"}).duplicate_of is None]
    process.join(timeout=60)

    assert process.exitcode == 0
    theirs = {task_id for task_id in ids if _holder_of(store, task_id) == "child@host/2"}
    assert theirs.isdisjoint(mine)
    assert theirs | set(mine) == set(ids)
    assert store.claim("after", "parent@host/1", {"body": "[]"}).deliveries == 1  # the parent's connection still works


def _write_then_wait(store: SqliteLeaseStore, sql: str, inside: Any, seconds: float, leave: Any = None) -> None:
    """Inside a lease transaction: run ``sql``, set ``inside``, then wait ``seconds`` (or until
    ``leave`` is set) before it commits."""
    with store._transaction() as db:
        db.execute(sql)
        inside.set()
        if leave is None:
            time.sleep(seconds)
        else:
            leave.wait(seconds)


def test_a_worker_killed_inside_a_transaction_leaves_the_leases_as_they_were(tmp_path):
    import multiprocessing

    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("me@host/1", 60)
    store.claim("before", "me@host/1", message_for("before"))
    context = multiprocessing.get_context("fork")
    inside = context.Event()

    # A claim, cut off by SIGKILL before it commits.
    killed_half_way = (store, "UPDATE lease SET holder = 'killed@host/9' WHERE task_id = 'before'", inside, 60)
    process = context.Process(target=_write_then_wait, args=killed_half_way)
    process.start()
    assert inside.wait(30)
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=30)

    # Its write lock went with it; the others go on, and see nothing of its change.
    assert store.claim("before", "other@host/2", message_for("before")).duplicate_of == "running"
    assert store.claim("after", "other@host/2", message_for("after")).deliveries == 1


def test_the_search_for_lost_workers_reads_the_leases_of_running_tasks_only(tmp_path):
    # It runs every GIRDER_WORKER_LEASE_SECONDS / 2 in every worker; finished leases are
    # kept a day, so reading them made it cost 160 ms per 10,000 tasks of the last day.
    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("me@host/1", 60)
    finished = [f"done-{i}" for i in range(200)]
    for task_id in finished:
        store.claim(task_id, "me@host/1", message_for(task_id))
    store.release([(task_id, 0) for task_id in finished], "me@host/1")
    store.claim("running", "me@host/1", message_for("running"))
    store.claim("orphan", "gone@host/2", message_for("orphan"))

    assert store.orphans() == [("orphan", "gone@host/2")]
    plan = " ".join(row[-1] for row in store._db().execute("EXPLAIN QUERY PLAN " + _RUNNING_QUERY))
    assert "lease_running" in plan, plan  # the index of running leases, not a scan of the table
    # A finished task is still known: its message delivered again is a duplicate.
    assert store.claim("done-7", "other@host/3", message_for("done-7")).duplicate_of == "done"


_RUNNING_QUERY = "SELECT task_id, holder FROM lease WHERE state = 'running'"


def test_a_finished_task_s_message_leaves_no_trace_in_the_lease_files(tmp_path):
    store = SqliteLeaseStore(tmp_path / "leases")
    secret = "girder-token-that-must-not-stay-on-disk"
    message = {**message_for("t1"), "headers": {"id": "t1", "task": "gwtest.lost", "girder_client_token": secret}}
    # With result_extended, the STARTED meta the claim keeps holds the run's arguments too.
    started = ("key", json.dumps({"status": "STARTED", "kwargs": {"token": secret}}), 0)
    assert store.claim_and_start("t1", "me@host/1", message, 0, 2, started)[1] is True
    assert any(secret.encode() in path.read_bytes() for path in (tmp_path / "leases").iterdir())  # while it runs

    store.release([("t1", 0)], "me@host/1")

    assert sorted(p.name for p in (tmp_path / "leases").iterdir()) == [DATABASE_NAME, f"{DATABASE_NAME}-journal"]
    assert not any(secret.encode() in path.read_bytes() for path in (tmp_path / "leases").iterdir())


def test_a_lease_database_of_an_earlier_girder_worker_gets_the_started_column_and_keeps_its_leases(tmp_path):
    import sqlite3

    (tmp_path / "leases").mkdir(mode=0o700)
    old = sqlite3.connect(tmp_path / "leases" / DATABASE_NAME)
    old.executescript(  # the table as girder-worker made it before it kept a run's STARTED
        "CREATE TABLE lease (task_id TEXT PRIMARY KEY, state TEXT NOT NULL, holder TEXT NOT NULL, "
        "attempt INTEGER NOT NULL, deliveries INTEGER NOT NULL, digest TEXT, message TEXT, changed REAL NOT NULL) "
        "WITHOUT ROWID;"
    )
    old.execute(
        "INSERT INTO lease VALUES ('old', 'running', 'gone@host/1', 0, 1, NULL, ?, 0)",
        (json.dumps(message_for("old")),),
    )
    old.commit()
    old.close()
    os.chmod(tmp_path / "leases" / DATABASE_NAME, 0o600)

    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("me@host/1", 60)
    claim, kept = store.claim_and_start("new", "me@host/1", message_for("new"), 0, 2, ("k", '{"status": "STARTED"}', 0))
    assert (claim.deliveries, kept) == (1, True)
    assert store.started_of("new") == '{"status": "STARTED"}'
    assert store.orphans() == [("old", "gone@host/1")]  # the earlier worker's lease is still there
    assert store.claim("old", "me@host/1", message_for("old")).deliveries == 2


def test_a_lease_keeps_a_run_s_started_only_while_the_run_is_in_progress(tmp_path):
    store = SqliteLeaseStore(tmp_path / "leases")
    started = ("key", '{"status": "STARTED"}', 0)
    assert store.claim_and_start("t1", "me@host/1", message_for("t1"), 0, 2, started) == (Claim(1, None, "", ""), True)
    assert store.started_of("t1") == started[1]
    store.release([("t1", 0)], "me@host/1")
    assert store.started_of("t1") is None

    store.claim_and_start("t2", "gone@host/1", message_for("t2"), 0, 2, started)
    assert store.take("t2", "gone@host/1") is not None  # its worker is lost
    assert store.started_of("t2") is None
    claim, kept = store.claim_and_start("t2", "me@host/1", message_for("t2"), 0, 2, started)
    assert (claim.deliveries, kept) == (2, False)  # delivered again: its STARTED goes to its result file
    assert store.started_of("t2") is None

    store.heartbeat("busy@host/1", 60)
    store.claim("t3", "busy@host/1", message_for("t3"))
    claim, kept = store.claim_and_start("t3", "me@host/1", message_for("t3"), 0, 2, started)
    assert (claim.duplicate_of, kept) == ("running", False)

    store.claim_and_start("t4", "me@host/1", message_for("t4"), 0, 2, started)
    store.release([("t4", 0)], "me@host/1")  # it asked to be retried: its result file says RETRY
    claim, kept = store.claim_and_start("t4", "me@host/1", message_for("t4"), 1, 2, started)
    assert (claim.deliveries, kept) == (1, False)  # its STARTED goes over the RETRY, in the file


def test_a_lease_database_that_is_not_one_is_set_aside_and_a_new_one_started(tmp_path, caplog):
    (tmp_path / "leases").mkdir(mode=0o700)
    (tmp_path / "leases" / DATABASE_NAME).write_bytes(b"garbage, not SQLite" * 100)
    store = SqliteLeaseStore(tmp_path / "leases")

    assert store.claim("t1", "me@host/1", message_for("t1")).deliveries == 1

    [aside] = (tmp_path / "quarantine").iterdir()
    assert aside.read_bytes().startswith(b"garbage")
    [line] = [r.getMessage() for r in caplog.records if r.name == "girder_worker.embedded"]
    assert line.startswith(f"embedded broker: {tmp_path / 'leases' / DATABASE_NAME} is not a lease database ("), line
    assert f"moved it to {aside} and started a new one" in line, line


def test_the_housekeeping_forgets_old_finished_leases_and_heartbeats_never_a_running_lease(tmp_path):
    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("gone@host/1", 1)
    store.claim("finished", "gone@host/1", message_for("finished"))
    store.release([("finished", 0)], "gone@host/1")
    store.claim("running", "gone@host/1", message_for("running"))
    day_later = time.time() + DONE_RETENTION_SECONDS + 60

    assert store.expire(time.time()) == 0  # nothing is a day old yet
    assert store.expire(day_later) == 2  # the finished lease and the heartbeat
    assert store.orphans() == [("running", "gone@host/1")]
    # The finished task is forgotten: the same message is a new task now.
    assert store.claim("finished", "other@host/2", message_for("finished")).deliveries == 1


def test_a_lease_store_that_fails_at_start_is_said_once_and_the_worker_goes_on(tmp_path, caplog):
    (tmp_path / "leases" / DATABASE_NAME).mkdir(parents=True)  # what no database can be opened at
    delivery = Delivery(make_app(tmp_path), "w@host", SqliteLeaseStore(tmp_path / "leases"))

    delivery.start()  # it raised, and the worker did not start
    try:
        time.sleep(0.5)  # the heartbeat thread tries again, and fails again
        assert delivery.thread is not None
        assert delivery.thread.is_alive()
    finally:
        delivery.stop()

    lines = [r.getMessage() for r in caplog.records if "lease store" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("cannot reach the lease store ("), lines
    assert DATABASE_NAME in lines[0], lines
    assert lines[0].endswith("; retrying; tasks of workers lost meanwhile wait until it answers"), lines


def test_a_process_forked_while_a_thread_writes_leases_claims_at_once(tmp_path):
    # A pool process is started again at any moment, maybe while the main process's
    # heartbeat thread is inside a transaction.
    import multiprocessing
    import threading

    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("parent@host/1", 60)
    inside, leave = threading.Event(), threading.Event()

    writes = (store, "UPDATE alive SET expires = expires + 1", inside, 10, leave)
    thread = threading.Thread(target=_write_then_wait, args=writes)
    thread.start()
    assert inside.wait(10)
    threading.Timer(0.3, leave.set).start()  # the transaction ends while the fork waits for it
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:  # as a pool process does: a store of its own, on the same database
        try:
            results.put(
                SqliteLeaseStore(tmp_path / "leases").claim("task-1", "child@host/2", {"body": "[]"}).deliveries
            )
        except Exception as exc:  # before: "database is locked", after 30 s of waiting for no one
            results.put(repr(exc))

    process = context.Process(target=child, daemon=True)
    process.start()
    try:
        claimed = results.get(timeout=90)
    finally:
        process.kill()
        thread.join(timeout=10)

    assert claimed == 1


def test_a_lease_database_removed_under_a_worker_is_made_again_where_the_others_find_it(tmp_path):
    # The embedded broker makes its data directory again when it is removed under a running
    # worker; a connection kept on the removed file wrote leases no other process could see.
    import shutil

    store = SqliteLeaseStore(tmp_path / "leases")
    store.heartbeat("me@host/1", 60)
    store.claim("before", "me@host/1", message_for("before"))
    shutil.rmtree(tmp_path / "leases")

    store.heartbeat("me@host/1", 60)
    assert store.claim("after", "me@host/1", message_for("after")).deliveries == 1

    other = SqliteLeaseStore(tmp_path / "leases")  # another process's view of the data directory
    assert other.claim("after", "other@host/2", message_for("after")).duplicate_of == "running"

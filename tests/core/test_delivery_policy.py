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
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker.delivery._delivery import Delivery, policy_for
from girder_worker.delivery._leases import FileLeaseStore, RedisLeaseStore

REDIS_DB = 14


@pytest.fixture(params=["files", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(tmp_path, **env: str):
    return create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), **env}))


@pytest.fixture
def stores(store_kind, tmp_path) -> Iterator[object]:
    if store_kind == "files":
        yield FileLeaseStore(tmp_path / "leases")
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


def _claims_of_one_task(store: FileLeaseStore, task_id: str, holders: list[str]) -> list[str]:
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


def test_the_threads_of_one_process_claim_a_file_lease_one_at_a_time(tmp_path):
    # The lock file stays open in a process; flock does not exclude its threads.
    store = FileLeaseStore(tmp_path / "leases")
    holders = [f"w{i}@host/{i}" for i in range(8)]
    for holder in holders:
        store.heartbeat(holder, 60)
    for round_ in range(20):
        assert len(_claims_of_one_task(store, f"task-{round_}", holders)) == 1


def test_a_forked_process_claims_a_file_lease_against_its_parent(tmp_path):
    import multiprocessing

    store = FileLeaseStore(tmp_path / "leases")
    for holder in ("parent@host/1", "child@host/2"):
        store.heartbeat(holder, 60)
    store.claim("warm", "parent@host/1", {"body": "[]"})  # the parent's lock file is open before the fork
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
    theirs = {task_id for task_id in ids if store._read(task_id)["holder"] == "child@host/2"}
    assert theirs.isdisjoint(mine)
    assert theirs | set(mine) == set(ids)


def test_the_search_for_lost_workers_reads_the_leases_of_running_tasks_only(tmp_path, monkeypatch):
    # It runs every GIRDER_WORKER_LEASE_SECONDS / 2 in every worker; finished leases are
    # kept a day, so reading them made it cost 160 ms per 10,000 tasks of the last day.
    store = FileLeaseStore(tmp_path / "leases")
    store.heartbeat("me@host/1", 60)
    finished = [f"done-{i}" for i in range(200)]
    for task_id in finished:
        store.claim(task_id, "me@host/1", message_for(task_id))
    store.release([(task_id, 0) for task_id in finished], "me@host/1")
    store.claim("running", "me@host/1", message_for("running"))
    store.claim("orphan", "gone@host/2", message_for("orphan"))
    read: list[str] = []
    real_read = FileLeaseStore._read

    def counted(self, task_id, **kwargs):
        read.append(task_id)
        return real_read(self, task_id, **kwargs)

    monkeypatch.setattr(FileLeaseStore, "_read", counted)

    assert store.orphans() == [("orphan", "gone@host/2")]
    assert sorted(read) == ["orphan", "running"]
    # A finished task is still known: its message delivered again is a duplicate.
    assert store.claim("done-7", "other@host/3", message_for("done-7")).duplicate_of == "done"


def test_a_release_cut_off_half_way_leaves_a_finished_task_not_a_lost_one(tmp_path):
    # A worker killed between writing the finished lease and removing the running one.
    store = FileLeaseStore(tmp_path / "leases")
    store.claim("cut", "killed@host/1", message_for("cut"))
    running = (tmp_path / "leases" / "cut.json").read_bytes()
    store.release([("cut", 0)], "killed@host/1")
    (tmp_path / "leases" / "cut.json").write_bytes(running)  # as if the removal never happened

    assert store.orphans() == [("cut", "killed@host/1")]  # it looks lost...
    assert store.take("cut", "killed@host/1") is None  # ...but is not taken over
    assert store.claim("cut", "other@host/2", message_for("cut")).duplicate_of == "done"
    assert store.orphans() == []

"""A run's admission, in the process that runs it: the lease claim, its STARTED state, its verdict.

On the real lease stores and result backends (Redis, the embedded broker's files), with
a real app, a real task and Celery's own request context, as a pool process has them
when Celery's ``task_prerun`` signal fires. The end-to-end tests, with real workers,
duplicates and kills, are in tests/integration/test_delivery.py.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import states
from celery.app.task import Context

from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker.broker._redis_results import ResultBackend
from girder_worker.delivery import _admission
from girder_worker.delivery._gate import LEASE_KEY, STARTED_STORED, DuplicateRun
from girder_worker.delivery._leases import DONE, lease_store_for
from girder_worker_utils import TaskLost
from girder_worker_utils.worker import REFUSAL_ATTR

REDIS_DB = 14


@pytest.fixture(params=["redis", "files"])
def app(request: pytest.FixtureRequest, tmp_path) -> Iterator[object]:
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}
    if request.param == "redis":
        env.update(
            GIRDER_WORKER_BROKER=f"redis://127.0.0.1:6379/{REDIS_DB}",
            GIRDER_WORKER_BACKEND=f"redis://127.0.0.1:6379/{REDIS_DB}",
        )
    the_app = create_app(read_config(env))

    @the_app.task(name="admission.echo", bind=True, shared=False)
    def echo(self, x):
        return x

    yield the_app
    if request.param == "redis":
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
        for key in client.keys("girder_worker:*") + client.keys("celery-task-meta-*"):
            client.delete(key)
    the_app.close()


def lease_for(
    task_id: str, holder: str = "here/1", mode: str = "at-least-once", limit: int = 3, attempt: int = 0
) -> dict[str, object]:
    """What the worker's main process hands a run (see Delivery.admit)."""
    return {
        "holder": holder,
        "attempt": attempt,
        "policy": [mode, limit],
        "message": {
            "body": json.dumps([[1], {}, {}]),
            "base64": False,
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "headers": {"id": task_id, "task": "admission.echo", "retries": attempt},
            "properties": {},
            "exchange": "",
            "routing_key": "celery",
        },
    }


def run_prerun(app, task_id: str, lease: dict[str, object]) -> Context:
    """Celery's request context for a run, as the tracer pushes it, then the admission's receiver."""
    task = app.tasks["admission.echo"]
    request = Context({"id": task_id, "hostname": "w1@host", LEASE_KEY: lease}, args=[1], kwargs={})
    task.request_stack.push(request)
    try:
        _admission._on_prerun(task_id=task_id, task=task)
    finally:
        task.request_stack.pop()
    return request


def stored(app, task_id: str) -> dict[str, object]:
    return app.backend.get_task_meta(task_id)


def celery_stores_started(app, task_id: str, request: Context) -> None:
    """What Celery's tracer does after the task_prerun signal, for a task that tracks STARTED."""
    app.backend.store_result(task_id, {"pid": 1, "hostname": "celery's own"}, states.STARTED, request=request)


def test_a_run_that_may_start_claims_its_lease_and_is_started(app):
    task_id = str(uuid.uuid4())
    request = run_prerun(app, task_id, lease_for(task_id))
    celery_stores_started(app, task_id, request)

    assert LEASE_KEY not in request.__dict__  # the task's code does not see the message it came in
    assert REFUSAL_ATTR not in request.__dict__
    meta = stored(app, task_id)
    assert meta["status"] == states.STARTED
    assert meta["result"]["pid"] in (os.getpid(), 1)
    # The claim holds the run: another worker's claim of the same task is a duplicate.
    other = lease_store_for(app).claim(task_id, "elsewhere/2", lease_for(task_id)["message"])
    assert other.duplicate_of == "running" or other.deliveries == 2  # files: "here/1" beats no heartbeat


def test_with_redis_the_claim_and_started_are_one_command(app):
    if not isinstance(app.backend, ResultBackend):
        pytest.skip("the embedded broker's files: Celery stores STARTED itself")
    client = app.backend.client
    sent = []
    execute = client.execute_command

    def recording(*args, **kwargs):
        sent.append(args[0])
        return execute(*args, **kwargs)

    client.execute_command = recording
    try:
        task_id = str(uuid.uuid4())
        request = run_prerun(app, task_id, lease_for(task_id))
        assert request.__dict__.get(STARTED_STORED) is True
        celery_stores_started(app, task_id, request)  # skipped: stored already
    finally:
        del client.execute_command
    assert [c for c in sent if c != "SCRIPT LOAD"] == ["EVALSHA"], sent
    meta = stored(app, task_id)
    assert meta["status"] == states.STARTED
    assert meta["result"] == {"pid": os.getpid(), "hostname": "w1@host"}  # what Celery's tracer stores


def result_files(app, task_id: str) -> list[str]:
    """The embedded backend's files that hold ``task_id``'s state (hidden partial ones included)."""
    return [name for name in os.listdir(os.fsdecode(app.backend.path)) if task_id in name]


def files_only(app) -> None:
    if isinstance(app.backend, ResultBackend):
        pytest.skip("Redis: the claim script stores STARTED under the result key (test above)")


def test_with_the_embedded_files_a_first_delivery_s_started_is_kept_by_its_claim(app):
    files_only(app)
    task_id = str(uuid.uuid4())
    request = run_prerun(app, task_id, lease_for(task_id))
    assert request.__dict__.get(STARTED_STORED) is True
    celery_stores_started(app, task_id, request)  # skipped: the claim kept it

    assert result_files(app, task_id) == []  # the run writes one file, its outcome
    meta = stored(app, task_id)
    assert meta["status"] == states.STARTED
    assert meta["result"] == {"pid": os.getpid(), "hostname": "w1@host"}  # what Celery's tracer stores
    assert meta["task_id"] == task_id

    app.backend.mark_as_done(task_id, 7, request=request)
    assert stored(app, task_id)["status"] == states.SUCCESS  # the file comes first
    lease_store_for(app).release([(task_id, 0)], "here/1", DONE)
    assert lease_store_for(app).started_of(task_id) is None
    assert stored(app, task_id)["result"] == 7


def test_with_the_embedded_files_a_retry_s_run_is_started_over_the_retry_state(app):
    files_only(app)
    task_id = str(uuid.uuid4())
    first = run_prerun(app, task_id, lease_for(task_id))
    app.backend.mark_as_retry(task_id, RuntimeError("again"), request=first)
    lease_store_for(app).release([(task_id, 0)], "here/1", DONE)
    assert stored(app, task_id)["status"] == states.RETRY

    retry = run_prerun(app, task_id, lease_for(task_id, attempt=1))
    assert STARTED_STORED not in retry.__dict__  # the file holds RETRY: Celery's STARTED replaces it
    celery_stores_started(app, task_id, retry)

    meta = stored(app, task_id)
    assert meta["status"] == states.STARTED
    assert meta["result"]["hostname"] == "celery's own"


def test_with_the_embedded_files_a_run_whose_task_has_a_state_already_is_started_celery_s_way(app):
    files_only(app)
    task_id = str(uuid.uuid4())
    app.backend.store_result(task_id, {"current": 1}, "PROGRESS")  # a reused id's, say

    request = run_prerun(app, task_id, lease_for(task_id))
    assert STARTED_STORED not in request.__dict__
    celery_stores_started(app, task_id, request)
    assert stored(app, task_id)["status"] == states.STARTED


def test_with_the_embedded_files_a_delivery_again_is_started_celery_s_way(app):
    files_only(app)
    task_id = str(uuid.uuid4())
    lease_store_for(app).claim(task_id, "lost/1", lease_for(task_id)["message"])  # its worker never beat

    request = run_prerun(app, task_id, lease_for(task_id))
    assert REFUSAL_ATTR not in request.__dict__
    assert STARTED_STORED not in request.__dict__
    assert lease_store_for(app).started_of(task_id) is None
    celery_stores_started(app, task_id, request)
    assert stored(app, task_id)["status"] == states.STARTED


def test_with_the_embedded_files_a_lease_database_that_cannot_be_read_leaves_a_task_pending(app, monkeypatch):
    files_only(app)
    task_id = str(uuid.uuid4())
    run_prerun(app, task_id, lease_for(task_id))

    def fails(self, task_id):
        raise OSError("disk gone")

    monkeypatch.setattr(type(app.backend._leases), "started_of", fails)
    assert stored(app, task_id)["status"] == states.PENDING  # not an error for the client


def test_a_duplicate_of_a_running_task_is_refused_and_leaves_its_result_alone(app):
    task_id = str(uuid.uuid4())
    store = lease_store_for(app)
    store.heartbeat("busy/1", 60)
    store.claim(task_id, "busy/1", lease_for(task_id)["message"])
    app.backend.store_result(task_id, {"current": 5}, "PROGRESS")

    request = run_prerun(app, task_id, lease_for(task_id))
    celery_stores_started(app, task_id, request)

    refusal = request.__dict__[REFUSAL_ATTR]
    assert isinstance(refusal, DuplicateRun)
    assert refusal.where == "while worker busy runs it"
    assert stored(app, task_id)["status"] == "PROGRESS"  # the running one's, not the duplicate's STARTED


def test_a_duplicate_of_a_failed_task_does_not_turn_its_failure_into_started(app):
    task_id = str(uuid.uuid4())
    store = lease_store_for(app)
    message = lease_for(task_id)["message"]
    store.claim(task_id, "gone/1", message)
    store.release([(task_id, 0)], "gone/1", DONE)
    app.backend.mark_as_failure(task_id, ValueError("no"))

    request = run_prerun(app, task_id, lease_for(task_id))
    celery_stores_started(app, task_id, request)

    assert isinstance(request.__dict__[REFUSAL_ATTR], DuplicateRun)
    assert request.__dict__[REFUSAL_ATTR].where == "after it finished"
    meta = stored(app, task_id)
    assert meta["status"] == states.FAILURE  # a duplicate's STARTED would stay there for good
    assert "no" in str(meta["result"])


def test_a_run_past_its_delivery_limit_is_refused_as_lost_and_not_started(app, caplog):
    task_id = str(uuid.uuid4())
    store = lease_store_for(app)
    for n in range(2):  # two runs whose workers never beat: lost
        store.claim(task_id, f"lost{n}/1", lease_for(task_id)["message"])

    request = run_prerun(app, task_id, lease_for(task_id, limit=2))
    celery_stores_started(app, task_id, request)

    refusal = request.__dict__[REFUSAL_ATTR]
    assert isinstance(refusal, TaskLost)
    assert refusal.reason == "worker lost 2 times (at-least-once, max_deliveries 2)"
    assert stored(app, task_id)["status"] == states.PENDING
    assert f"admission.echo[{task_id}] was lost with its worker before: worker lost 2 times" in caplog.text


def test_a_lease_store_that_does_not_answer_lets_the_run_go_on_and_says_so_once(app, caplog, monkeypatch):
    def refuses(*args, **kwargs):
        raise ConnectionError("lease store down")

    store = lease_store_for(app)
    monkeypatch.setattr(type(store), "claim", refuses)
    monkeypatch.setattr(type(store), "claim_and_start", refuses, raising=False)
    monkeypatch.setattr(_admission, "_stores", {})
    monkeypatch.setattr(_admission, "_failing", False)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    requests = [run_prerun(app, i, lease_for(i)) for i in (first, second)]

    assert all(REFUSAL_ATTR not in r.__dict__ for r in requests)
    lines = [r.getMessage() for r in caplog.records if "could not claim the lease" in r.getMessage()]
    assert lines == [
        f"could not claim the lease of task admission.echo[{first}] (lease store down); "
        "it runs without crash protection"
    ]


def test_the_admission_decides_before_the_girder_job_sees_the_run(tmp_path):
    # The girder job's receiver skips a run the admission dropped as a duplicate: it must
    # have decided by then. (The metrics' receiver is connected later still, when a
    # worker with metrics starts.)
    from celery import signals

    create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}))
    order = [lookup[0][0] for lookup in signals.task_prerun.receivers]
    assert order.index("girder_worker.delivery.admission") < order.index("girder_worker.girder.prerun"), order

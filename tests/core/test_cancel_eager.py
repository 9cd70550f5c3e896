"""Cancellation in eager mode and on the client side, without a worker."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from girder_worker import cancel
from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker.cancellation._store import FileCancelStore, store_for


@pytest.fixture
def eager_app(tmp_path):
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"}))
    yield app
    app.close()


def test_an_eager_task_cancelled_from_another_thread_ends_revoked(eager_app):
    seen = []

    @eager_app.task(bind=True, shared=False)
    def loop(self):
        while not self.cancelled:
            time.sleep(0.005)
        seen.append(self.request.id)
        return "stopped"

    task_id = str(uuid.uuid4())
    runner = threading.Thread(target=lambda: loop.apply_async(task_id=task_id))
    runner.start()
    time.sleep(0.2)

    outcome = cancel(task_id, app=eager_app)

    runner.join(timeout=10)
    assert not runner.is_alive()
    assert outcome.sent
    assert seen == [task_id]
    assert eager_app.AsyncResult(task_id).state == "REVOKED"


def test_a_task_that_raises_task_cancelled_ends_revoked_with_its_reason(eager_app):
    from girder_worker_utils import TaskCancelled

    @eager_app.task(bind=True, shared=False)
    def gives_up(self):
        raise TaskCancelled("input withdrawn")

    result = gives_up.apply_async()
    stored = eager_app.AsyncResult(result.id)
    assert stored.state == "REVOKED"
    assert str(stored.result) == "input withdrawn"


def test_celery_revoke_is_recorded_durably(eager_app, tmp_path):
    task_id = str(uuid.uuid4())
    eager_app.control.revoke(task_id)
    store = store_for(eager_app)
    assert isinstance(store, FileCancelStore)
    assert task_id in store.recent()


def test_an_error_raised_after_the_cancel_still_ends_revoked(eager_app):
    @eager_app.task(bind=True, shared=False)
    def breaks_on_the_way_out(self):
        while not self.cancelled:
            time.sleep(0.005)
        raise OSError("the half-written output file is gone")

    task_id = str(uuid.uuid4())
    runner = threading.Thread(target=lambda: breaks_on_the_way_out.apply_async(task_id=task_id))
    runner.start()
    time.sleep(0.2)
    cancel(task_id, app=eager_app)
    runner.join(timeout=10)
    assert eager_app.AsyncResult(task_id).state == "REVOKED"

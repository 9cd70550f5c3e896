"""The plain-Celery side of the benchmark: a bare ``celery.Celery`` app.

Nothing from girder-worker is used except, on the embedded broker, the kombu
transport class that ``BENCH_PLAIN_BROKER_TRANSPORT`` names (the benchmark sets
it from :func:`girder_worker._config.embedded_settings`, so both sides use the
same transport, folders and polling interval).

Environment (all set by ``bench/run.py``):

``BENCH_PLAIN_BROKER_URL``
    broker URL (``amqp://...``, ``redis://...`` or ``filesystem://``).
``BENCH_PLAIN_RESULT_BACKEND``
    result backend URL.
``BENCH_PLAIN_BROKER_TRANSPORT``
    optional kombu transport class (``module:Class``).
``BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS``
    optional JSON object of broker transport options.
``BENCH_PLAIN_ACKS_LATE``
    ``1``: ``task_acks_late`` and ``task_reject_on_worker_lost``, Celery's
    documented recipe for delivering a task again when its worker dies
    (``bench/faults.py`` runs plain Celery with and without it).

Start a worker with ``python -m celery -A bench.plain_app worker`` from the
repository root.
"""

from __future__ import annotations

import json
import os
import time

from celery import Celery
from celery.contrib.abortable import AbortableTask

from bench.recording import record_run

app = Celery("plain")
app.conf.update(
    broker_url=os.environ.get("BENCH_PLAIN_BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("BENCH_PLAIN_RESULT_BACKEND", "redis://127.0.0.1:6379/0"),
    # The serializer settings girder-worker uses, exactly.
    task_serializer="json",
    result_serializer="json",
    event_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # What girder-worker's side runs with: the gwexample plugin it loads (for fibonacci)
    # sets TASK_TIME_LIMIT 300 for every task, as the plugin guide shows. Celery enforces
    # it in its prefork pool only (a timer entry per run); girder-worker in every pool.
    task_time_limit=300,
)
if os.environ.get("BENCH_PLAIN_BROKER_TRANSPORT"):
    app.conf.broker_transport = os.environ["BENCH_PLAIN_BROKER_TRANSPORT"]
if os.environ.get("BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS"):
    app.conf.broker_transport_options = json.loads(os.environ["BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS"])
if os.environ.get("BENCH_PLAIN_ACKS_LATE") == "1":
    app.conf.task_acks_late = True
    app.conf.task_reject_on_worker_lost = True


@app.task
def add(x, y):
    return x + y


@app.task(bind=True)
def record(self, path, seconds):
    """Note this run's start and end in the file ``path``; sleep ``seconds`` between."""
    return record_run(path, self.request.id, seconds)


@app.task
def fibonacci(n):
    """The recursive Fibonacci of gwexample, declared the way the original
    girder-worker did: each recursive call goes through the task object."""
    if n == 1 or n == 2:
        return 1
    return fibonacci(n - 1) + fibonacci(n - 2)


# bench/cancel.py's tasks: the counterparts of bench/gw_bench_tasks.py's, on
# Celery's own AbortableTask, whose is_aborted() reads the task's state from the
# result backend.


@app.task(bind=True, base=AbortableTask)
def aborted_read_cost(self, batch, batches):
    """Time ``batches`` batches of ``batch`` calls of ``self.is_aborted()`` in this run."""
    per_read, per_loop = [], []
    seen = False
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            seen = self.is_aborted()
        t1 = time.perf_counter_ns()
        for _ in range(batch):
            seen = False
        t2 = time.perf_counter_ns()
        per_read.append((t1 - t0) / batch)
        per_loop.append((t2 - t1) / batch)
    return {"per_read_ns": per_read, "loop_ns": per_loop, "seen": seen}


@app.task(bind=True, base=AbortableTask)
def spin_until_aborted(self, marker_dir, timeout):
    """Loop on ``while not self.is_aborted()`` for at most ``timeout`` seconds.

    Writes ``<marker_dir>/<id>.started`` before the loop and, once it sees the
    abort, the time it saw it to ``<id>.seen``.
    """
    base = os.path.join(marker_dir, self.request.id)
    _mark(base + ".started", time.time())
    deadline = time.monotonic() + timeout
    while not self.is_aborted():
        if time.monotonic() > deadline:
            _mark(base + ".timeout", time.time())
            return None
    seen = time.time()
    _mark(base + ".seen", seen)
    return seen


def _mark(path, value):
    with open(path + ".tmp", "w") as f:
        f.write(repr(value))
    os.replace(path + ".tmp", path)

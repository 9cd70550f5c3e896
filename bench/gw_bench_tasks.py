"""girder-worker's side of the benchmark's tasks.

Declared the way a plugin declares its tasks. The worker imports this module
through ``celery worker``'s ``-I`` option, which ``girder-worker`` passes on;
the Fibonacci task comes from the gwexample plugin, loaded as usual.

``add`` is ``bench/run.py``'s trivial task; ``cancelled_read_cost`` and
``spin_until_cancelled`` are ``bench/cancel.py``'s, with their plain-Celery
counterparts (on ``AbortableTask``) in ``bench/plain_app.py``; ``record`` is
``bench/faults.py``'s, the same in both apps (``bench/recording.py``).

With ``BENCH_CANCEL_TRACE_DIR`` set, the worker also notes when its cancel
listener delivers the cancel of a task that ``spin_until_cancelled`` runs:
``<dir>/<id>.delivered`` holds the time the listener began to deliver it, written
after the delivery (so the task is not kept waiting), which splits a cancel's
latency into the way to the worker and the way from the listener to the task.
"""

import os
import time

from bench.recording import record_run
from girder_worker_utils import task
from girder_worker_utils.transform import Transform


class Const(Transform):
    """bench/transforms.py's transform: the task receives ``value``."""

    def __init__(self, value):
        self.value = value

    def transform(self):
        return self.value


@task
def add(x, y):
    return x + y


@task(bind=True)
def record(self, path, seconds):
    """Note this run's start and end in the file ``path``; sleep ``seconds`` between."""
    return record_run(path, self.request.id, seconds)


@task(bind=True)
def cancelled_read_cost(self, batch, batches):
    """Time ``batches`` batches of ``batch`` reads of ``self.cancelled`` in this run.

    Returns the time per read of each batch, and per iteration of the same loop
    without the read (the loop's own cost), in nanoseconds.
    """
    per_read, per_loop = [], []
    seen = False
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            seen = self.cancelled
        t1 = time.perf_counter_ns()
        for _ in range(batch):
            seen = False
        t2 = time.perf_counter_ns()
        per_read.append((t1 - t0) / batch)
        per_loop.append((t2 - t1) / batch)
    return {"per_read_ns": per_read, "loop_ns": per_loop, "seen": seen}


@task(bind=True)
def spin_until_cancelled(self, marker_dir, timeout):
    """Loop on ``while not self.cancelled`` for at most ``timeout`` seconds.

    Writes ``<marker_dir>/<id>.started`` before the loop and, once it sees the
    cancel, the time it saw it to ``<id>.seen`` (a cancelled run ends REVOKED, so
    what it returns is not stored).
    """
    base = os.path.join(marker_dir, self.request.id)
    _mark(base + ".started", time.time())
    deadline = time.monotonic() + timeout
    while not self.cancelled:
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


def _trace_deliveries(folder):
    from girder_worker import _cancel

    deliver = _cancel.REGISTRY.deliver

    def traced(task_ids, reason):
        at = time.time()
        task_ids = list(task_ids)
        deliver(task_ids, reason)
        for task_id in task_ids:
            base = os.path.join(folder, task_id)
            if os.path.exists(base + ".started"):
                _mark(base + ".delivered", at)

    _cancel.REGISTRY.deliver = traced


if os.environ.get("BENCH_CANCEL_TRACE_DIR"):
    _trace_deliveries(os.environ["BENCH_CANCEL_TRACE_DIR"])

"""One side's client for ``bench/cancel.py``: ``bench/client.py`` plus cancellation.

``python -m bench.cancel_client --side ours|plain --queue Q`` takes the same
options and commands as :mod:`bench.client` (``bench/cancel.py`` uses its
``warmup`` and ``throughput``), and these:

``{"op": "read_cost", "batch": B, "batches": K}``
    one task that times K batches of B cancellation checks in the worker:
    ``self.cancelled`` (ours, ``bench.gw_bench_tasks.cancelled_read_cost``) or
    ``AbortableTask.is_aborted()`` (plain, ``bench.plain_app.aborted_read_cost``);
    answers the time per check of each batch, and of the bare loop, in ns.
``{"op": "cancel_latency", "method": M, "marker_dir": D, "settle": S}``
    one task that loops until it sees its cancel (``spin_until_cancelled`` /
    ``spin_until_aborted``); once its ``<D>/<id>.started`` marker exists, and S
    seconds more, the client takes ``time.time()`` and cancels it with M:
    ``cancel`` (``girder_worker.cancel(result, app=app)``), ``revoke``
    (``result.revoke()``, what Girder calls) or ``abort`` (plain Celery's
    ``AbortableAsyncResult(id).abort()``). The task writes the time it saw the
    cancel to ``<D>/<id>.seen``; the answer has the latency, the time the cancel
    call itself took, and the run's final state (awaited before answering, so
    the next trial finds the worker idle). On girder-worker's side, when the
    worker notes it (``BENCH_CANCEL_TRACE_DIR``, see ``bench/gw_bench_tasks.py``),
    also the time from the cancel call to the listener's delivery.

On ``quit`` it also removes the ids it cancelled from girder-worker's durable
cancel record in a Redis backend, so a shared Redis keeps nothing of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import Any

from bench.client import Client, Deadline, main

POLL = 0.0005  # how often the client looks for a marker file
STATE_POLL = 0.005  # how often it reads the final state of a run
SPIN_TIMEOUT = 30.0  # how long a task loops before it gives up on its cancel
TRACE_WAIT = 1.0  # how long to wait for the worker's note of the delivery


class CancelClient(Client):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        if args.side == "ours":
            from bench.gw_bench_tasks import cancelled_read_cost, spin_until_cancelled

            self.read_task, self.spin_task = cancelled_read_cost, spin_until_cancelled
        else:
            from bench.plain_app import aborted_read_cost, spin_until_aborted

            self.read_task, self.spin_task = aborted_read_cost, spin_until_aborted
        self.cancelled_ids: list[str] = []

    def ops(self) -> dict[str, Any]:
        return {**super().ops(), "read_cost": self.read_cost, "cancel_latency": self.cancel_latency}

    def read_cost(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        result = self.read_task.apply_async((int(cmd["batch"]), int(cmd["batches"])), queue=self.args.queue)
        self.issued.append(result.id)
        value = result.get(timeout=min(self.args.task_timeout, deadline.left()), **self.get_opts)
        return {"per_read_ns": value["per_read_ns"], "loop_ns": value["loop_ns"]}

    def _cancel(self, method: str, result: Any) -> None:
        if method == "cancel":
            from girder_worker import cancel

            outcome = cancel(result, app=self.app)
            if not outcome.sent:
                raise RuntimeError(f"cancel() did not send: {outcome.message}")
        elif method == "revoke":
            result.revoke()
        elif method == "abort":
            from celery.contrib.abortable import AbortableAsyncResult

            AbortableAsyncResult(result.id, app=self.app).abort()
        else:
            raise ValueError(f"unknown cancel method {method!r}")

    def cancel_latency(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        method = str(cmd["method"])
        marker_dir = str(cmd["marker_dir"])
        t_submit = time.perf_counter()
        result = self.spin_task.apply_async((marker_dir, SPIN_TIMEOUT), queue=self.args.queue)
        self.issued.append(result.id)
        base = os.path.join(marker_dir, result.id)
        _wait_for(base + ".started", deadline, "the task's start")
        start_wait = time.perf_counter() - t_submit
        time.sleep(float(cmd.get("settle", 0.0)))  # the task is in its loop by now

        t_cancel = time.time()
        self._cancel(method, result)
        call_s = time.time() - t_cancel
        self.cancelled_ids.append(result.id)

        seen_path = _wait_for(base + ".seen", deadline, f"the task's sight of its {method}", also=base + ".timeout")
        if seen_path.endswith(".timeout"):
            raise RuntimeError(f"task {result.id} did not see its {method} within {SPIN_TIMEOUT}s")
        with open(seen_path) as f:
            t_seen = float(f.read())
        # The run's final state, so that the next trial finds the worker idle.
        while True:
            state = result.state
            if state in ("SUCCESS", "FAILURE", "REVOKED"):
                break
            deadline.left()
            time.sleep(STATE_POLL)
        # When the worker's listener delivered it, if the worker traces that (ours).
        delivered_s = None
        if self.args.side == "ours":
            trace_deadline = time.monotonic() + TRACE_WAIT
            while not os.path.exists(base + ".delivered") and time.monotonic() < trace_deadline:
                time.sleep(POLL)
            with contextlib.suppress(OSError, ValueError), open(base + ".delivered") as f:
                delivered_s = float(f.read()) - t_cancel
        for suffix in (".started", ".seen", ".delivered"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base + suffix)
        return {
            "latency_s": t_seen - t_cancel,
            "delivered_s": delivered_s,
            "call_s": call_s,
            "start_wait_s": start_wait,
            "final_state": state,
            "task_id": result.id,
            "at": t_cancel,
        }

    def quit(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        removed = 0
        if self.args.side == "ours" and self.cancelled_ids:
            from girder_worker.cancellation._store import RedisCancelStore, store_for

            store = store_for(self.app)
            if isinstance(store, RedisCancelStore):
                for start in range(0, len(self.cancelled_ids), 500):
                    removed += int(store.client.zrem(store.key, *self.cancelled_ids[start : start + 500]))
        reply = super().quit(cmd, deadline)
        return {**reply, "cancel_records_removed": removed}


def _wait_for(path: str, deadline: Deadline, what: str, also: str | None = None) -> str:
    """Wait for ``path`` (or ``also``) to exist, within the deadline; return which one."""
    while True:
        if os.path.exists(path):
            return path
        if also is not None and os.path.exists(also):
            return also
        if deadline.end - time.monotonic() <= 0:
            raise TimeoutError(f"waited in vain for {what} ({path})")
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main(client_class=CancelClient))

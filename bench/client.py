"""One side's measurements against a running worker; run by ``bench/run.py``.

``python -m bench.client --side ours|plain --queue Q ...`` publishes to queue Q
with the side's own app (girder-worker's ``girder_worker.app.app`` configured by
the ``GIRDER_WORKER_*`` environment, or ``bench.plain_app.app`` configured by
``BENCH_PLAIN_*``) and prints one JSON line with the timings. Every loop is
bounded in count and in time; a task that fails or returns a wrong value stops
the run with an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def _load(side: str) -> tuple[Any, Any, Any]:
    if side == "ours":
        from bench.gw_bench_tasks import add
        from girder_worker.app import app  # configures the app the tasks bind to
        from gwexample.analyses.tasks import fibonacci
    else:
        from bench.plain_app import add, app, fibonacci
    return app, add, fibonacci


def _fib(n: int) -> int:
    a, b = 1, 1
    for _ in range(n - 2):
        a, b = b, a + b
    return b


class Deadline:
    def __init__(self, seconds: float, what: str) -> None:
        self.end = time.monotonic() + seconds
        self.what = what

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{self.what} did not finish in time")
        return left


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--side", choices=["ours", "plain"], required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--n", type=int, default=200, help="sequential round trips")
    p.add_argument("--m", type=int, default=1000, help="tasks in the throughput batch")
    p.add_argument("--fib-n", type=int, default=26)
    p.add_argument("--fib-runs", type=int, default=3)
    p.add_argument("--poll-interval", type=float, default=0.0, help="result polling interval; 0: default")
    p.add_argument("--phase-timeout", type=float, default=180.0)
    p.add_argument("--task-timeout", type=float, default=60.0)
    args = p.parse_args(argv)

    app, add, fibonacci = _load(args.side)
    get_opts: dict[str, Any] = {}
    if args.poll_interval > 0:
        get_opts["interval"] = args.poll_interval
    issued: list[str] = []

    def call(task: Any, *a: Any, timeout: float) -> Any:
        result = task.apply_async(a, queue=args.queue)
        issued.append(result.id)
        return result.get(timeout=timeout, **get_opts)

    base = type(app.tasks[add.name]).__mro__[1]
    out: dict[str, Any] = {"side": args.side, "app": app.main, "task_base": f"{base.__module__}.{base.__name__}"}

    # Warm-up: connections, result subscriptions, the worker's first task.
    deadline = Deadline(args.phase_timeout, "warm-up")
    for _ in range(max(1, args.warmup)):
        if call(add, 1, 2, timeout=min(args.task_timeout, deadline.left())) != 3:
            raise AssertionError("add(1, 2) != 3")

    # 1. Round-trip latency: N sequential apply_async().get().
    latencies: list[float] = []
    deadline = Deadline(args.phase_timeout, "latency")
    for _ in range(args.n):
        timeout = min(args.task_timeout, deadline.left())
        t0 = time.perf_counter()
        value = call(add, 1, 2, timeout=timeout)
        latencies.append(time.perf_counter() - t0)
        if value != 3:
            raise AssertionError("add(1, 2) != 3")
    out["latency_s"] = latencies

    # 2. Throughput: submit M, then wait for every result.
    deadline = Deadline(args.phase_timeout, "throughput")
    t0 = time.perf_counter()
    results = []
    for i in range(args.m):
        deadline.left()
        results.append(add.apply_async((i, 1), queue=args.queue))
    issued.extend(r.id for r in results)
    t_sent = time.perf_counter()
    for i, r in enumerate(results):
        if r.get(timeout=min(args.task_timeout, deadline.left()), **get_opts) != i + 1:
            raise AssertionError(f"add({i}, 1) != {i + 1}")
    elapsed = time.perf_counter() - t0
    out["throughput"] = {"tasks": args.m, "seconds": elapsed, "submit_seconds": t_sent - t0}

    # 4. fibonacci(fib_n), end to end; one small call first to warm the pool.
    deadline = Deadline(args.phase_timeout * 2, "fibonacci")
    if call(fibonacci, 10, timeout=min(args.task_timeout, deadline.left())) != 55:
        raise AssertionError("fibonacci(10) != 55")
    fib_times = []
    want = _fib(args.fib_n)
    for _ in range(args.fib_runs):
        timeout = min(args.task_timeout * 2, deadline.left())
        t0 = time.perf_counter()
        value = call(fibonacci, args.fib_n, timeout=timeout)
        fib_times.append(time.perf_counter() - t0)
        if value != want:
            raise AssertionError(f"fibonacci({args.fib_n}) returned {value}, not {want}")
    out["fibonacci_s"] = fib_times
    out["fibonacci_n"] = args.fib_n

    # Leave nothing behind in a shared Redis result backend (not timed).
    backend = app.backend
    client = getattr(backend, "client", None)
    if client is not None and hasattr(backend, "get_key_for_task"):
        for start in range(0, len(issued), 500):
            client.delete(*(backend.get_key_for_task(i) for i in issued[start : start + 500]))
    app.close()

    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

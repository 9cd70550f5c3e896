"""One side's client for ``bench/run.py``: measurements on request.

``python -m bench.client --side ours|plain --queue Q`` publishes to queue Q with
the side's own app: girder-worker's ``girder_worker.app.app`` (configured by the
``GIRDER_WORKER_*`` environment; ``add`` from ``bench.gw_bench_tasks``,
``fibonacci`` from gwexample) or ``bench.plain_app.app`` (configured by
``BENCH_PLAIN_*``). It reads one JSON command a line on stdin and answers each
with one JSON line on stdout, so the driver can alternate the two sides round
by round:

``{"op": "hello"}``
    the app's name and the task base class;
``{"op": "warmup", "count": W}``
    W sequential ``add(1, 2)`` round trips, untimed;
``{"op": "latency", "count": N}``
    N sequential ``add(1, 2)`` round trips, each timed;
``{"op": "throughput", "count": M}``
    M ``add`` tasks submitted, then every result awaited, timed as a whole
    (with the longest wait for one result, where a pause of the worker shows);
``{"op": "fibonacci", "n": 26}``
    one ``fibonacci(n)`` round trip, timed;
``{"op": "quit"}``
    delete this client's results from a Redis backend and exit.

Every wait is bounded by ``--task-timeout`` and every command by
``--phase-timeout``; a wrong answer or a timeout is reported as
``{"error": ...}`` and ends the client.
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


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.app, self.add, self.fibonacci = _load(args.side)
        self.get_opts: dict[str, Any] = {}
        if args.poll_interval > 0:
            self.get_opts["interval"] = args.poll_interval
        self.issued: list[str] = []

    def _call(self, task: Any, args: tuple[Any, ...], want: Any, deadline: Deadline) -> None:
        result = task.apply_async(args, queue=self.args.queue)
        self.issued.append(result.id)
        value = result.get(timeout=min(self.args.task_timeout, deadline.left()), **self.get_opts)
        if value != want:
            raise AssertionError(f"{task.name}{args} returned {value!r}, not {want!r}")

    def hello(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        base = type(self.app.tasks[self.add.name]).__mro__[1]
        return {"app": self.app.main, "task_base": f"{base.__module__}.{base.__name__}"}

    def warmup(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        for _ in range(max(1, int(cmd["count"]))):
            self._call(self.add, (1, 2), 3, deadline)
        # One small Fibonacci as well, so the first timed one pays no first-call costs.
        self._call(self.fibonacci, (10,), 55, deadline)
        return {}

    def latency(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        samples = []
        for _ in range(int(cmd["count"])):
            t0 = time.perf_counter()
            self._call(self.add, (1, 2), 3, deadline)
            samples.append(time.perf_counter() - t0)
        return {"latency_s": samples}

    def throughput(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        count = int(cmd["count"])
        t0 = time.perf_counter()
        results = []
        for i in range(count):
            deadline.left()
            results.append(self.add.apply_async((i, 1), queue=self.args.queue))
        # girder-worker on RabbitMQ: a publish returns before RabbitMQ's confirm; the submission
        # counts until RabbitMQ has confirmed them all (plain Celery publishes without confirms).
        confirm = getattr(self.app, "confirm_published", None)
        if confirm is not None:
            confirm()
        t_sent = time.perf_counter()
        self.issued.extend(r.id for r in results)
        longest_wait = 0.0  # a pause of the worker shows up as one long wait
        for i, r in enumerate(results):
            t_wait = time.perf_counter()
            value = r.get(timeout=min(self.args.task_timeout, deadline.left()), **self.get_opts)
            longest_wait = max(longest_wait, time.perf_counter() - t_wait)
            if value != i + 1:
                raise AssertionError(f"add({i}, 1) returned {value!r}")
        return {
            "tasks": count,
            "seconds": time.perf_counter() - t0,
            "submit_seconds": t_sent - t0,
            "longest_wait_seconds": longest_wait,
        }

    def fibonacci_(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        n = int(cmd["n"])
        t0 = time.perf_counter()
        self._call(self.fibonacci, (n,), _fib(n), deadline)
        return {"seconds": time.perf_counter() - t0}

    def ops(self) -> dict[str, Any]:
        """The commands this client answers, by name (a subclass adds its own)."""
        return {
            "hello": self.hello,
            "warmup": self.warmup,
            "latency": self.latency,
            "throughput": self.throughput,
            "fibonacci": self.fibonacci_,
            "quit": self.quit,
        }

    def quit(self, cmd: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        # Leave nothing behind in a shared Redis result backend (file results go
        # with their temporary directory).
        backend = self.app.backend
        client = getattr(backend, "client", None)
        deleted = 0
        if client is not None and hasattr(backend, "get_key_for_task"):
            for start in range(0, len(self.issued), 500):
                keys = [backend.get_key_for_task(i) for i in self.issued[start : start + 500]]
                deleted += int(client.delete(*keys))
        self.app.close()
        return {"results_deleted": deleted}


def main(argv: list[str] | None = None, client_class: type[Client] = Client) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--side", choices=["ours", "plain"], required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--poll-interval", type=float, default=0.0, help="result polling interval; 0: default")
    p.add_argument("--phase-timeout", type=float, default=180.0)
    p.add_argument("--task-timeout", type=float, default=120.0)
    args = p.parse_args(argv)

    client = client_class(args)
    ops = client.ops()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd.get("op")
        try:
            reply = ops[op](cmd, Deadline(args.phase_timeout, str(op)))
        except Exception as exc:  # (reported to the driver, which stops)
            print(json.dumps({"op": op, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
            return 1
        print(json.dumps({"op": op, **reply}), flush=True)
        if op == "quit":
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

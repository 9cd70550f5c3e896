"""The part of a task run inside the process that runs it, timed in one process.

``hatch run bench:run-path [--base REF] [options]`` (``--help`` for the rest). What a
pool process (or a solo worker) does for one run once the job has reached it, without
the pool's pipe, the broker or the client: Celery's tracer (``build_tracer``, as the
worker builds it) with its signals, girder-worker's admission (the lease claim and
``STARTED``), the task (the benchmark's ``add``), the ``SUCCESS`` store and the
success log line, against a real result backend: Redis (``127.0.0.1:6379``, db 12)
or the embedded broker's files (a fresh data directory).

Sides, each in a fresh interpreter (Celery's signals are process-wide):

* **plain**: ``bench/plain_app.py``'s ``add`` on the same backend;
* **head**: girder-worker from the working tree, each run handed what the worker's
  main process hands it (its lease: holder, attempt, policy, message);
* **base** (with ``--base REF``): the same from ``REF``'s ``packages/``.

Rounds alternate the sides; each round times ``--batches`` batches of ``--runs``
runs per side and keeps the median batch. It prints the median over the rounds of
microseconds per run, and ours/plain and head/base. Nothing else runs meanwhile, so
it resolves a few percent (``--base HEAD`` on a clean tree shows how much): for a
change on this path, that is far quieter than a whole worker and client.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/run_path.py``
    sys.path.insert(0, str(ROOT))

REDIS_URL = "redis://127.0.0.1:6379/12"
BACKENDS = ("redis", "embedded")
WARMUP_RUNS = 200


# --- one side, in its own interpreter -----------------------------------------------


def _side_app(side: str, backend: str, data_dir: Path) -> tuple[Any, Any]:
    if side == "plain":
        if backend == "redis":
            os.environ["BENCH_PLAIN_BROKER_URL"] = os.environ["BENCH_PLAIN_RESULT_BACKEND"] = REDIS_URL
        else:
            from bench.run import plain_embedded_env

            os.environ.update(plain_embedded_env(data_dir))
        from bench.plain_app import add, app
    else:
        if backend == "redis":
            os.environ["GIRDER_WORKER_BROKER"] = os.environ["GIRDER_WORKER_BACKEND"] = REDIS_URL
        else:
            os.environ["GIRDER_WORKER_DATA_DIR"] = str(data_dir)
        from bench.gw_bench_tasks import add
        from girder_worker.app import app
    app.loader.import_default_modules()
    return app, app.tasks[add.name]


def _request(side: str, task: Any, task_id: str, body: str) -> dict[str, Any]:
    """The request dict a worker hands the tracer for one run of ``add(1, 2)``."""
    request: dict[str, Any] = {
        "lang": "py", "task": task.name, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
        "parent_id": None, "argsrepr": "(1, 2)", "kwargsrepr": "{}", "origin": "bench@host",
        "ignore_result": False, "hostname": "bench@host", "is_eager": False, "reply_to": "bench",
        "correlation_id": task_id,
        "delivery_info": {"exchange": "", "routing_key": "bench", "priority": 0, "redelivered": False},
    }  # fmt: skip
    if side != "plain":
        from girder_worker.delivery._gate import LEASE_KEY

        headers = {k: v for k, v in request.items() if k not in ("delivery_info", "reply_to", "correlation_id")}
        message = {
            "body": body, "base64": False, "content_type": "application/json", "content_encoding": "utf-8",
            "headers": headers, "properties": {"correlation_id": task_id, "reply_to": "bench"},
            "exchange": "", "routing_key": "bench",
        }  # fmt: skip
        # What Delivery.admit hands a run of a girder-worker task.
        lease = {"holder": "bench@host/1", "attempt": 0, "policy": ["at-least-once", 2], "message": message}
        request[LEASE_KEY] = lease
    return request


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def measure_side(side: str, backend: str, runs: int, batches: int) -> dict[str, Any]:
    """Time ``batches`` batches of ``runs`` runs; the microseconds per run of each batch."""
    import logging

    from celery.app.trace import build_tracer

    data_dir = Path(tempfile.mkdtemp(prefix="gw-run-path-"))
    try:
        app, task = _side_app(side, backend, data_dir)
        # The success line is made and formatted (logging's default formatter, both sides), not written.
        logging.basicConfig(level=logging.INFO, stream=_Discard())
        app.set_current()
        tracer = build_tracer(task.name, task, loader=app.loader, hostname="bench@host", app=app)
        body = json.dumps([[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        ids: list[str] = []

        def batch(count: int) -> float:
            work = [(i, _request(side, task, i, body)) for i in (str(uuid.uuid4()) for _ in range(count))]
            ids.extend(i for i, _ in work)
            t0 = time.perf_counter()
            for task_id, request in work:
                tracer(task_id, (1, 2), {}, request)
            return (time.perf_counter() - t0) / count * 1e6

        batch(WARMUP_RUNS)
        per_run = [batch(runs) for _ in range(batches)]
        state = app.backend.get_task_meta(ids[-1])["status"]
        if state != "SUCCESS":
            raise RuntimeError(f"{side} on {backend}: the last run's state is {state}, not SUCCESS")
        if backend == "redis":
            _forget(app, ids)
        return {"us_per_run": per_run}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _forget(app: Any, ids: list[str]) -> None:
    """Delete the results and leases the runs left in Redis."""
    client = app.backend.client
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        pipe = client.pipeline(transaction=False)
        pipe.delete(*[app.backend.get_key_for_task(i) for i in chunk])
        pipe.delete(*[f"girder_worker:lease:{i}" for i in chunk])
        pipe.zrem("girder_worker:running", *chunk)
        pipe.execute()


# --- the driver -----------------------------------------------------------------------


def run_side(side: str, backend: str, args: argparse.Namespace, base_paths: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIRDER_WORKER_", "BENCH_PLAIN_"))}
    paths = [*(base_paths if side == "base" else []), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--backends", backend,
           "--runs", str(args.runs), "--batches", str(args.batches)]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} on {backend} failed:\n{done.stderr[-2000:]}")
    return statistics.median(json.loads(done.stdout.splitlines()[-1])["us_per_run"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run_path.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", help="also time girder-worker at this git commit (branch, tag)")
    p.add_argument("--backends", default="redis,embedded", help="comma-separated: redis,embedded")
    p.add_argument("--rounds", type=int, default=4, help="rounds, the sides alternating (default 4)")
    p.add_argument("--runs", type=int, default=1000, help="runs per batch (default 1000)")
    p.add_argument("--batches", type=int, default=5, help="batches per side and round (default 5)")
    p.add_argument("--side", help=argparse.SUPPRESS)  # one side, in this process (the driver's child)
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in backends:
        if backend not in BACKENDS:
            p.error(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if args.side is not None:
        print(json.dumps(measure_side(args.side, backends[0], args.runs, args.batches)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="gw-run-path-base-"))
    try:
        base_paths: list[str] = []
        sides = ["plain", "head"]
        if args.base:
            from bench.ab import export_base

            base_paths = export_base(args.base, work)
            sides.insert(1, "base")
            print(f"base: {args.base} ({base_paths[0]})")
        lines = [f"{'backend':<10} {'side':<6} {'us per run':>11} {'/ plain':>9} {'/ base':>8}   rounds", "-" * 70]
        for backend in backends:
            rounds: dict[str, list[float]] = {side: [] for side in sides}
            for i in range(args.rounds):
                for side in sides if i % 2 == 0 else sides[::-1]:
                    rounds[side].append(run_side(side, backend, args, base_paths))
            median = {side: statistics.median(values) for side, values in rounds.items()}
            for side in sides:
                to_base = f"{median[side] / median['base']:.3f}" if "base" in median and side == "head" else ""
                lines.append(
                    f"{backend:<10} {side:<6} {median[side]:>11.1f} {median[side] / median['plain']:>9.3f} "
                    f"{to_base:>8}   {' '.join(f'{v:.0f}' for v in rounds[side])}"
                )
        print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

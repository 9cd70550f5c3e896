"""Metrics: what the hooks cost when metrics are off, and per task when they are on.

In this process, no broker needed:

1. off: a one-line hook (``_metrics.report_failed()``, ``duplicate_dropped(name)``)
   against a call of an empty function, nanoseconds per call; goal: at most 50 ns
   more. Celery's signals cost nothing more when off: their receivers are connected
   only when metrics are on.
2. always on: the ``girder_worker_sent_at`` header every client writes into each
   task message (``before_task_publish``), nanoseconds per message.
3. on: what the receivers of one task run add (``task_prerun``, ``task_postrun``,
   ``task_success``, each incrementing prometheus-client's multiprocess files),
   microseconds per task.

With ``--throughput``, also end to end on Redis: a girder-worker (prefork -c 2)
with metrics off, then on (``GIRDER_WORKER_METRICS_PORT=0``), alternating for
``--rounds`` rounds, each round sending ``--tasks`` trivial tasks at once and
waiting for every result; tasks per second, and on/off (goal: at least 0.97).

    hatch run bench:metrics [--n 200000] [--throughput [--tasks 500] [--rounds 3]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_call_ns(statement: str, names: dict[str, object], n: int, repeat: int = 7) -> float:
    """Median nanoseconds of one run of ``statement``, over ``repeat`` timings of ``n`` runs."""
    timer = timeit.Timer(statement, globals=names)
    return statistics.median(t / n * 1e9 for t in timer.repeat(repeat=repeat, number=n))


def off_costs(n: int) -> dict[str, float]:
    from girder_worker import _metrics

    assert _metrics._live is None

    def empty(*args: object) -> None:
        pass

    names = {"empty": empty, "m": _metrics}
    return {
        "empty()": per_call_ns("empty()", names, n),
        "m.report_failed(), off": per_call_ns("m.report_failed()", names, n),
        "empty('gwtest.add')": per_call_ns("empty('gwtest.add')", names, n),
        "m.duplicate_dropped(name), off": per_call_ns("m.duplicate_dropped('gwtest.add')", names, n),
    }


def stamp_cost(n: int) -> float:
    from girder_worker import _metrics

    headers: dict[str, object] = {"task": "gwtest.add", "id": "x"}
    return per_call_ns("stamp(headers=headers)", {"stamp": _metrics._stamp, "headers": headers}, n)


def on_cost_per_task(n: int) -> float:
    """Microseconds the receivers of one run add, metrics on, multiprocess mode."""
    path = tempfile.mkdtemp(prefix="bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        from celery import Celery

        from girder_worker import _metrics

        app = Celery("bench", set_as_current=False)

        @app.task(name="bench.add")
        def add(x: int, y: int) -> int:
            return x + y

        _metrics.enable(app)
        task = SimpleNamespace(name="bench.add", request=SimpleNamespace(girder_worker_sent_at=0.0, eta=None))
        sent = [0.0]

        def one_run() -> None:
            task.request.girder_worker_sent_at = sent[0]
            _metrics._on_prerun(task_id="t", task=task)
            _metrics._on_postrun(task_id="t", task=task)
            _metrics._on_success(sender=task)

        sent[0] = time.time()
        cost = per_call_ns("one_run()", {"one_run": one_run}, n) / 1000
        _metrics.disable()
        return cost
    finally:
        shutil.rmtree(path, ignore_errors=True)


def throughput(metrics_on: bool, tasks: int, work: Path) -> float:
    """Tasks per second of one worker on Redis, metrics on or off."""
    import uuid

    from bench.run import Worker, delete_queues, side_env, worker_cmd
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    queue, node = f"bench-metrics-{uuid.uuid4().hex[:8]}", f"bench-metrics-{uuid.uuid4().hex[:8]}@%h"
    env = side_env("ours", "redis", work / "data")
    if metrics_on:
        env["GIRDER_WORKER_METRICS_PORT"] = "0"
    worker = Worker(worker_cmd("ours", "prefork", 2, queue, node), env, work / f"worker-{queue}.log")
    app = create_app(read_config({k: v for k, v in env.items() if k.startswith("GIRDER_WORKER_")}))
    try:
        worker.wait_ready()
        add = "bench.gw_bench_tasks.add"
        for result in [app.send_task(add, (i, 1), queue=queue) for i in range(20)]:  # warm up
            result.get(timeout=60)
        began = time.perf_counter()
        results = [app.send_task(add, (i, 1), queue=queue) for i in range(tasks)]
        for result in results:
            result.get(timeout=120)
        return tasks / (time.perf_counter() - began)
    finally:
        worker.stop()
        app.close()
        delete_queues("redis", [queue], [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="calls per timing run (default 200000)")
    parser.add_argument("--throughput", action="store_true", help="also measure throughput on Redis, on vs off")
    parser.add_argument("--tasks", type=int, default=500, help="tasks per throughput round (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds of each (default 3)")
    args = parser.parse_args(argv)

    off = off_costs(args.n)
    for what, ns in off.items():
        print(f"{what:34s} {ns:7.1f} ns")
    extra = max(
        off["m.report_failed(), off"] - off["empty()"],
        off["m.duplicate_dropped(name), off"] - off["empty('gwtest.add')"],
    )
    verdict = "met" if extra <= 50 else "MISSED"
    print(f"{'a hook off, beyond the empty call':34s} {extra:7.1f} ns   (goal <= 50 ns: {verdict})")
    print(f"{'sent_at header, per message':34s} {stamp_cost(args.n):7.1f} ns")
    print(f"{'receivers per task, metrics on':34s} {on_cost_per_task(max(args.n // 20, 1000)):7.2f} us")
    if args.throughput:
        rates: dict[bool, list[float]] = {False: [], True: []}
        with tempfile.TemporaryDirectory(prefix="bench-metrics-") as work:
            for _ in range(args.rounds):
                for on in (False, True):
                    rates[on].append(throughput(on, args.tasks, Path(work)))
                    print(f"  metrics {'on ' if on else 'off'}: {rates[on][-1]:7.1f} tasks/s")
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        verdict = "met" if on / off >= 0.97 else "MISSED"
        print(f"{'throughput on/off (medians)':34s} {on / off:7.3f}   (goal >= 0.97: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

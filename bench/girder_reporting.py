"""Girder job reporting: what it costs a task, against the real Girder 5.0.21.

Run from the repository root, in the test environment (it starts Girder with the
test suite's fixture code, and needs RabbitMQ and Redis on loopback)::

    hatch run hatch-test.all:python bench/girder_reporting.py [--n 200] [--lines 100000]

It measures, with one ``girder-worker -P solo`` on RabbitMQ (results in Redis):

1. a short task's round trip (``send_task(...).get()``), without a job and with one
   (a ``celery_handler`` job made beforehand, its ``jobInfoSpec`` in the headers),
   taking turns task by task; and with the job made while publishing
   (``girder_api_url`` + ``girder_client_token``, so ``POST /job`` is included);
2. how long after the result the job shows SUCCESS in Girder;
3. the HTTP requests the worker sends per short task, counted on a TCP proxy
   between the worker and Girder (``GIRDER_WORKER_API_URL`` points at it);
4. a task printing ``--lines`` lines: its run time with and without a job, the
   requests sent, the worker's peak memory (RSS), and what Girder stored.

Figures are printed and written to ``bench/results/girder-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from girder_worker._app import create_app  # noqa: E402
from girder_worker._config import read_config  # noqa: E402
from tests.integration.girder_server import RABBITMQ_URL, GirderServer, start_girder  # noqa: E402
from tests.integration.tcp_proxy import TcpProxy  # noqa: E402

BACKEND = "redis://127.0.0.1:6379/1"
PATTERNS = (b"PUT /api/v1/job/", b"GET /api/v1/job/", b"POST /api/v1/job")


class RequestCounter:
    """Counts HTTP request lines in the bytes a proxy sends to Girder."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(PATTERNS, 0)
        self.bytes = 0
        self._tail = b""
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            self.bytes += len(data)
            seen = self._tail + data
            for pattern in PATTERNS:
                start = max(0, len(self._tail) - len(pattern) + 1)
                self.counts[pattern] += seen.count(pattern, start)
            self._tail = seen[-32:]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {p.decode().split()[0]: n for p, n in self.counts.items()} | {"bytes": self.bytes}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


class Worker:
    def __init__(self, env: dict[str, str], queue: str, log: Path) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}
        full.update(env)
        full["PYTHONPATH"] = str(ROOT)
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "girder_worker", "-l", "info", "-P", "solo", "-Q", queue,
                 "-n", f"{queue}@%h", "-I", "bench.girder_bench_tasks", "--without-mingle", "--without-gossip"],
                env=full, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        self.process = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def new_job(girder: GirderServer, title: str) -> dict[str, Any]:
    return girder.create_job(title=title, type="bench", handler="celery_handler")


def wait_success(girder: GirderServer, job_id: str, timeout: float = 60) -> float:
    """Seconds until Girder shows the job SUCCESS, polling every 2 ms."""
    started = time.monotonic()
    while girder.get_job(job_id)["status"] != 3:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"job {job_id} did not succeed in {timeout}s")
        time.sleep(0.002)
    return time.monotonic() - started


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def short_tasks(girder: GirderServer, app: Any, queue: str, n: int) -> dict[str, Any]:
    def once(**options: Any) -> float:
        started = time.perf_counter()
        app.send_task("bench.girder.short", args=[1], queue=queue, **options).get(timeout=60)
        return time.perf_counter() - started

    plain: list[float] = []
    with_job: list[float] = []
    for i in range(n + 10):  # the first ten are a warm-up
        job = new_job(girder, f"short {i}")
        pair = [("plain", {}), ("job", {"headers": {"jobInfoSpec": job["jobInfoSpec"]}})]
        for name, options in pair if i % 2 else pair[::-1]:
            took = once(**options)
            if i >= 10:
                (plain if name == "plain" else with_job).append(took)
    lag = []
    for i in range(20):
        job = new_job(girder, f"lag {i}")
        once(headers={"jobInfoSpec": job["jobInfoSpec"]})
        lag.append(wait_success(girder, job["_id"]))
    published = [
        once(girder_api_url=girder.api_url, girder_client_token=girder.token, girder_job_title=f"published {i}")
        for i in range(min(n, 100))
    ]
    return {
        "without_job": ms(plain),
        "with_job": ms(with_job),
        "added_median_ms": round((statistics.median(with_job) - statistics.median(plain)) * 1000, 3),
        "job_made_at_publish": ms(published),
        "success_in_girder_after_result": ms(lag),
    }


def requests_per_task(girder: GirderServer, app: Any, queue: str, counter: RequestCounter, m: int) -> dict[str, Any]:
    jobs = [new_job(girder, f"counted {i}") for i in range(m)]
    before = counter.snapshot()
    for job in jobs:
        app.send_task("bench.girder.short", args=[1], queue=queue, headers={"jobInfoSpec": job["jobInfoSpec"]}).get(
            timeout=60
        )
    for job in jobs:
        wait_success(girder, job["_id"])
    sent = diff(counter.snapshot(), before)
    return {"tasks": m, "requests": sent, "per_task": round((sent["PUT"] + sent["GET"]) / m, 2)}


def flood(girder: GirderServer, app: Any, queue: str, worker: Worker, counter: RequestCounter, lines: int) -> Any:
    def run(headers: dict[str, Any]) -> tuple[float, int]:
        peak = worker.rss()
        started = time.perf_counter()
        result = app.send_task("bench.girder.flood", args=[lines], queue=queue, headers=headers)
        while not result.ready():
            peak = max(peak, worker.rss())
            time.sleep(0.02)
        result.get()
        return time.perf_counter() - started, peak

    baseline = worker.rss()
    plain_seconds, plain_peak = run({})
    job = new_job(girder, "flood")
    before = counter.snapshot()
    seconds, peak = run({"jobInfoSpec": job["jobInfoSpec"]})
    lag = wait_success(girder, job["_id"], timeout=120)
    stored = girder.get_job(job["_id"])
    return {
        "lines": lines,
        "without_job": {"seconds": round(plain_seconds, 3), "peak_rss_mib": round(plain_peak / 2**20, 1)},
        "with_job": {"seconds": round(seconds, 3), "peak_rss_mib": round(peak / 2**20, 1)},
        "rss_before_mib": round(baseline / 2**20, 1),
        "success_in_girder_after_result_s": round(lag, 3),
        "requests": diff(counter.snapshot(), before),
        "stored_log_chars": sum(len(e) for e in stored.get("log") or []),
        "stored_log_entries": len(stored.get("log") or []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="short tasks per side (default 200)")
    parser.add_argument("--m", type=int, default=50, help="short tasks whose requests are counted")
    parser.add_argument("--lines", type=int, default=100_000, help="lines the flood task prints")
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="girder-bench-"))
    girder = start_girder(RABBITMQ_URL, run_dir / "girder")
    counter = RequestCounter()
    host, port = girder.api_url.split("//")[1].split("/")[0].split(":")
    proxy = TcpProxy((host, int(port)), tap=counter)
    proxied_api = f"http://127.0.0.1:{proxy.port}/api/v1"
    env = {"GIRDER_WORKER_BROKER": RABBITMQ_URL, "GIRDER_WORKER_BACKEND": BACKEND}
    queue = f"girder-bench-{uuid.uuid4().hex[:8]}"
    app = create_app(read_config(env))
    results: dict[str, Any] = {"started": dt.datetime.now(dt.timezone.utc).isoformat(), "args": vars(args)}
    workers: list[Worker] = []
    try:
        workers.append(Worker(env, queue, run_dir / "worker-direct.log"))
        results["short_task"] = short_tasks(girder, app, queue, args.n)
        workers.pop().stop()
        workers.append(Worker({**env, "GIRDER_WORKER_API_URL": proxied_api}, queue, run_dir / "worker-proxied.log"))
        results["requests_per_short_task"] = requests_per_task(girder, app, queue, counter, args.m)
        results["flood"] = flood(girder, app, queue, workers[0], counter, args.lines)
    finally:
        for worker in workers:
            worker.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        app.close()
        proxy.cut()
        girder.stop()
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"girder-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()

"""girder-worker against plain Celery, on the same broker, backend and pool.

``hatch run bench:run [options]`` (``--quick`` for a short run, ``--help`` for
the rest). For each broker (embedded, RabbitMQ, Redis) and pool (prefork -c 2,
solo; threads on request) it runs girder-worker's worker and a plain Celery
worker one after the other and measures, per side:

1. round-trip latency of ``add(1, 2)``: N sequential ``apply_async().get()``
   after a warm-up (median, p95);
2. throughput: M ``add`` tasks submitted, then every result awaited;
3. worker start to ready: spawn to the `` ready.`` log line (median of a few
   starts, the two sides alternating);
4. ``fibonacci(26)`` end to end: gwexample's task through the plugin against
   the same recursive function as a plain ``@app.task``.

It prints a table per broker and pool with ours/plain ratios and the goals, and
writes every figure to ``bench/results/<timestamp>.json``. It talks only to
127.0.0.1, uses its own queue names, deletes its queues and results afterwards,
and kills every worker's process group at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_BROKER_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_BACKEND = "redis://127.0.0.1:6379/1"
BROKERS: dict[str, tuple[str, str] | None] = {
    "embedded": None,
    "rabbitmq": (RABBITMQ_URL, RABBITMQ_BACKEND),
    "redis": (REDIS_BROKER_URL, REDIS_BROKER_URL),
}
PORTS = {"rabbitmq": [5672, 6379], "redis": [6379]}
POOLS = ("prefork", "solo", "threads")
SIDES = ("ours", "plain")
# Options both workers get: no broadcast chatter with other workers on a shared
# broker, and the same log level (the " ready." line is logged at info).
COMMON_WORKER_OPTS = ["-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"]
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0

# The goals: (key, description, comparison, bound).
GOALS = [
    ("latency_median", "latency within 5% (median ours/plain <= 1.05)", "le", 1.05),
    ("throughput", "throughput within 5% (ours/plain >= 0.95)", "ge", 0.95),
    ("start", "worker start within 10% (median ours/plain <= 1.10)", "le", 1.10),
    ("fibonacci", "fibonacci(26) at most a fifth (ours/plain <= 0.20)", "le", 0.20),
]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------


class Worker:
    """A worker process in its own session, its output read line by line.

    ``ready_seconds`` is the time from just before spawning it to the arrival of
    its first output line that contains `` ready.``.
    """

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.cmd = cmd
        self.log_path = log_path
        self._ready = threading.Event()
        self.ready_seconds: float | None = None
        self._log = log_path.open("wb")
        self._t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.ready_seconds is None and b" ready." in line:
                self.ready_seconds = time.perf_counter() - self._t0
                self._ready.set()
            self._log.write(line)
        self._log.flush()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                why = "exited" if self.proc.returncode is not None else f"was not ready in {timeout:.0f}s"
                raise RuntimeError(f"worker {why}: {' '.join(self.cmd)}\n{self.tail()}")
        assert self.ready_seconds is not None
        return self.ready_seconds

    def tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Warm shutdown of the main process, then SIGKILL to whatever of the group is left."""
        pgid = self.proc.pid  # start_new_session: the group is the worker's pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._reader.join(timeout=5)
        self._log.close()


# --- configuration of the two sides -----------------------------------------


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIRDER_WORKER_", "BENCH_PLAIN_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def plain_embedded_env(data_dir: Path) -> dict[str, str]:
    """bench.plain_app's variables for exactly girder-worker's embedded settings."""
    from girder_worker._config import embedded_settings

    settings = embedded_settings(data_dir)
    known = {"broker_url", "broker_transport", "broker_transport_options", "result_backend"}
    if set(settings) - known:
        raise RuntimeError(f"embedded_settings() has settings bench/plain_app.py cannot take: {set(settings) - known}")
    return {
        "BENCH_PLAIN_BROKER_URL": settings["broker_url"],
        "BENCH_PLAIN_RESULT_BACKEND": settings["result_backend"],
        "BENCH_PLAIN_BROKER_TRANSPORT": settings.get("broker_transport", ""),
        "BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS": json.dumps(settings.get("broker_transport_options", {})),
    }


def embedded_poll_interval() -> float:
    from girder_worker._config import _EMBEDDED_POLL_SECONDS

    return float(_EMBEDDED_POLL_SECONDS)


def side_env(side: str, broker: str, data_dir: Path) -> dict[str, str]:
    env = base_env()
    urls = BROKERS[broker]
    if side == "ours":
        if urls is None:
            env["GIRDER_WORKER_DATA_DIR"] = str(data_dir)
        else:
            env["GIRDER_WORKER_BROKER"], env["GIRDER_WORKER_BACKEND"] = urls
    elif urls is None:
        env.update(plain_embedded_env(data_dir))
    else:
        env["BENCH_PLAIN_BROKER_URL"], env["BENCH_PLAIN_RESULT_BACKEND"] = urls
    return env


def pool_opts(pool: str, concurrency: int) -> list[str]:
    return ["-P", pool] if pool == "solo" else ["-P", pool, "-c", str(concurrency)]


def worker_cmd(side: str, pool: str, concurrency: int, queue: str, node: str) -> list[str]:
    opts = [*COMMON_WORKER_OPTS, *pool_opts(pool, concurrency), "-Q", queue, "-n", f"{node}@%h"]
    if side == "ours":
        exe = shutil.which("girder-worker", path=os.path.dirname(sys.executable)) or "girder-worker"
        return [exe, *opts, "-I", "bench.gw_bench_tasks"]
    return [sys.executable, "-m", "celery", "-A", "bench.plain_app", "worker", *opts]


def delete_queue(broker: str, queue: str) -> None:
    """Remove a run's queue (and, on Redis, its binding) from a shared broker."""
    urls = BROKERS[broker]
    if urls is None:
        return
    from kombu import Connection, Exchange, Queue

    try:
        with Connection(urls[0], connect_timeout=5) as conn:
            channel = conn.channel()
            if broker == "redis":
                # kombu's Redis channel deletes the binding it knows of: declare it first.
                Queue(queue, Exchange(queue, type="direct"), routing_key=queue)(channel).declare()
                channel.queue_delete(queue)
            else:
                channel.queue_delete(queue)
                channel.exchange_delete(queue)
            channel.close()
    except Exception as exc:
        log(f"could not delete queue {queue} on {broker}: {exc}")


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- statistics --------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ratio(ours: float | None, plain: float | None) -> float | None:
    if ours is None or plain is None or plain == 0:
        return None
    return ours / plain


# --- one broker and pool -----------------------------------------------------


def run_client(side: str, env: dict[str, str], queue: str, args: argparse.Namespace, poll: float) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.client", "--side", side, "--queue", queue,
        "--warmup", str(args.warmup), "--n", str(args.n), "--m", str(args.m),
        "--fib-n", str(args.fib_n), "--fib-runs", str(args.fib_runs),
        "--poll-interval", str(poll), "--phase-timeout", str(args.phase_timeout),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=args.phase_timeout * 5, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client ({side}) failed with status {proc.returncode}:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def running(cmd: list[str], env: dict[str, str], log_path: Path) -> Iterator[Worker]:
    worker = Worker(cmd, env, log_path)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def run_config(broker: str, pool: str, index: int, args: argparse.Namespace, run_id: str, work: Path) -> dict[str, Any]:
    tag = f"{broker}-{pool}"
    queues = {side: f"gwbench-{run_id}-{tag}-{side}" for side in SIDES}
    poll = embedded_poll_interval() if BROKERS[broker] is None else 0.0
    record: dict[str, Any] = {"broker": broker, "pool": pool, "queues": queues, "sides": {}}
    commands: dict[str, list[str]] = {}
    for side in SIDES:
        record["sides"][side] = {"starts_s": []}
        commands[side] = worker_cmd(side, pool, args.concurrency, queues[side], f"gwbench-{side}-{run_id}")
    record["commands"] = {side: " ".join(cmd) for side, cmd in commands.items()}

    def fresh(side: str, what: str) -> tuple[dict[str, str], Path]:
        # A fresh data directory each time (used by the embedded broker only).
        data_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-{side}-{what}-", dir=work))
        return side_env(side, broker, data_dir), data_dir / "worker.log"

    try:
        # 3. Start to ready, the sides alternating.
        for i in range(args.starts):
            order = SIDES if i % 2 == 0 else SIDES[::-1]
            for side in order:
                env, log_path = fresh(side, f"start{i}")
                with running(commands[side], env, log_path) as worker:
                    assert worker.ready_seconds is not None
                    record["sides"][side]["starts_s"].append(worker.ready_seconds)
        # 1, 2, 4. One worker per side, one side after the other; which side goes
        # first alternates from one configuration to the next.
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for side in order:
            env, log_path = fresh(side, "load")
            log(f"{tag}: {side} worker under load")
            with running(commands[side], env, log_path):
                record["sides"][side].update(run_client(side, env, queues[side], args, poll))
    finally:
        for side in SIDES:
            delete_queue(broker, queues[side])

    record["summary"] = summarize(record)
    return record


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, dict[str, float | None]] = {}
    for side in SIDES:
        s = record["sides"][side]
        lat = s.get("latency_s") or []
        thr = s.get("throughput")
        figures[side] = {
            "latency_median_ms": statistics.median(lat) * 1000 if lat else None,
            "latency_p95_ms": percentile(lat, 0.95) * 1000 if lat else None,
            "throughput_per_s": thr["tasks"] / thr["seconds"] if thr else None,
            "start_median_s": statistics.median(s["starts_s"]) if s["starts_s"] else None,
            "fibonacci_median_s": statistics.median(s["fibonacci_s"]) if s.get("fibonacci_s") else None,
        }
    ours, plain = figures["ours"], figures["plain"]
    ratios = {
        "latency_median": ratio(ours["latency_median_ms"], plain["latency_median_ms"]),
        "latency_p95": ratio(ours["latency_p95_ms"], plain["latency_p95_ms"]),
        "throughput": ratio(ours["throughput_per_s"], plain["throughput_per_s"]),
        "start": ratio(ours["start_median_s"], plain["start_median_s"]),
        "fibonacci": ratio(ours["fibonacci_median_s"], plain["fibonacci_median_s"]),
    }
    goals = {}
    for key, _, op, bound in GOALS:
        value = ratios[key]
        goals[key] = None if value is None else (value <= bound if op == "le" else value >= bound)
    return {"ours": ours, "plain": plain, "ratios": ratios, "goals": goals}


# --- output ------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(record: dict[str, Any], args: argparse.Namespace) -> str:
    summary = record["summary"]
    ours, plain, ratios = summary["ours"], summary["plain"], summary["ratios"]
    pool = record["pool"] + ("" if record["pool"] == "solo" else f" -c {args.concurrency}")
    lines = [f"== {record['broker']} / {pool} =="]
    if record.get("error"):
        lines.append(f"   ERROR: {record['error'].splitlines()[0]}")
    header = f"   {'metric':<32}{'girder-worker':>15}{'plain Celery':>15}{'ours/plain':>12}"
    lines += [header, "   " + "-" * (len(header) - 3)]
    rows = [
        (f"latency median (ms, N={args.n})", "latency_median_ms", "latency_median", ".2f"),
        ("latency p95 (ms)", "latency_p95_ms", "latency_p95", ".2f"),
        (f"throughput (tasks/s, M={args.m})", "throughput_per_s", "throughput", ".1f"),
        (f"start to ready (s, median of {args.starts})", "start_median_s", "start", ".3f"),
        (f"fibonacci({args.fib_n}) (s, median of {args.fib_runs})", "fibonacci_median_s", "fibonacci", ".3f"),
    ]
    for label, key, rkey, spec in rows:
        lines.append(f"   {label:<32}{fmt(ours[key], spec):>15}{fmt(plain[key], spec):>15}{fmt(ratios[rkey], '.3f'):>12}")
    for key, text, _, _ in GOALS:
        met = summary["goals"][key]
        verdict = "not measured" if met is None else ("MET" if met else "NOT MET")
        lines.append(f"   goal: {text}: {fmt(ratios[key], '.3f')} -> {verdict}")
    return "\n".join(lines)


def preamble(args: argparse.Namespace, started: str) -> str:
    conc = f" -c {args.concurrency}"
    return "\n".join([
        f"girder-worker vs plain Celery, {started}; Python {platform.python_version()}, "
        f"celery {version('celery')}, kombu {version('kombu')}, girder-worker-core {version('girder-worker-core')}, "
        f"{os.cpu_count()} CPUs",
        f"ours:  girder-worker {' '.join(COMMON_WORKER_OPTS)} -P <pool>[{conc}] -Q <queue> -I bench.gw_bench_tasks",
        "       (girder_worker.app.app with its loader, plugins and task class; fibonacci is gwexample's task",
        "        loaded through the plugin; add is bench/gw_bench_tasks.py, imported by celery worker's -I option)",
        f"plain: python -m celery -A bench.plain_app worker {' '.join(COMMON_WORKER_OPTS)} -P <pool>[{conc}] -Q <queue>",
        "       (a bare celery.Celery app; add and fibonacci are plain @app.task, recursion through the task)",
        "embedded: GIRDER_WORKER_DATA_DIR=<fresh temp dir>; plain Celery gets embedded_settings(<its own fresh dir>):",
        f"       the same transport class, folders layout and {embedded_poll_interval()}s polling; file:// results,",
        f"       which both clients poll every {embedded_poll_interval()}s (girder-worker's default; passed to plain's get())",
        f"rabbitmq: {RABBITMQ_URL} with results in {RABBITMQ_BACKEND}; redis: {REDIS_BROKER_URL} (results too)",
        "each side: a fresh worker; one unique queue per side and run, deleted afterwards; sides run one after the other",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="embedded,rabbitmq,redis", help="comma-separated: embedded,rabbitmq,redis")
    p.add_argument("--pools", default="prefork,solo", help="comma-separated: prefork,solo,threads")
    p.add_argument("--concurrency", "-c", type=int, default=2, help="prefork/threads concurrency (default 2)")
    p.add_argument("--n", type=int, help="sequential round trips for latency (default 300; quick 50)")
    p.add_argument("--m", type=int, help="tasks in the throughput batch (default 1000; quick 200)")
    p.add_argument("--warmup", type=int, help="warm-up round trips (default 20; quick 5)")
    p.add_argument("--starts", type=int, help="worker starts per side (default 4; quick 2)")
    p.add_argument("--fib-n", type=int, default=26, help="the Fibonacci argument (default 26)")
    p.add_argument("--fib-runs", type=int, help="fibonacci runs per side (default 3; quick 1)")
    p.add_argument("--phase-timeout", type=float, default=180.0, help="seconds one phase may take")
    p.add_argument("--quick", action="store_true", help="small N, M and repeat counts")
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/<timestamp>.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' logs and data directories")
    args = p.parse_args(argv)
    defaults = {"n": (300, 50), "m": (1000, 200), "warmup": (20, 5), "starts": (4, 2), "fib_runs": (3, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.pool_list = [x.strip() for x in args.pools.split(",") if x.strip()]
    for b in args.broker_list:
        if b not in BROKERS:
            p.error(f"unknown broker {b!r}; choose from {', '.join(BROKERS)}")
    for x in args.pool_list:
        if x not in POOLS:
            p.error(f"unknown pool {x!r}; choose from {', '.join(POOLS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    now = dt.datetime.now()
    started = now.isoformat(timespec="seconds")
    run_id = f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    t_start = time.monotonic()
    print(preamble(args, started), flush=True)
    work = Path(tempfile.mkdtemp(prefix="gwbench-"))
    records: list[dict[str, Any]] = []
    try:
        index = 0
        for broker in args.broker_list:
            missing = [port for port in PORTS.get(broker, []) if not reachable(port)]
            for pool in args.pool_list:
                if missing:
                    record = {"broker": broker, "pool": pool, "sides": {s: {"starts_s": []} for s in SIDES}}
                    record["error"] = f"nothing listens on 127.0.0.1 port(s) {missing}; skipped"
                else:
                    log(f"{broker} / {pool}")
                    try:
                        record = run_config(broker, pool, index, args, run_id, work)
                    except Exception as exc:
                        log(f"{broker} / {pool} failed: {exc}")
                        record = {"broker": broker, "pool": pool, "error": str(exc)}
                        record["sides"] = {s: {"starts_s": []} for s in SIDES}
                    index += 1
                record["summary"] = summarize(record)
                records.append(record)
                print("\n" + table(record, args), flush=True)
    finally:
        if args.keep_logs:
            log(f"logs and data directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    met = [r["summary"]["goals"][k] for r in records for k, *_ in GOALS]
    elapsed = time.monotonic() - t_start
    print(
        f"\ngoals met: {sum(1 for m in met if m)} of {len(met)} "
        f"({sum(1 for m in met if m is None)} not measured); total time {elapsed:.0f}s",
        flush=True,
    )
    if not args.no_json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"{now:%Y%m%dT%H%M%S}.json"
        payload = {
            "started": started,
            "seconds": elapsed,
            "args": {k: v for k, v in vars(args).items()},
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "versions": {d: version(d) for d in ("celery", "kombu", "girder-worker-core", "girder-worker-utils")},
            "goals": [{"key": k, "text": t, "bound": b} for k, t, _, b in GOALS],
            "results": records,
        }
        out.write_text(json.dumps(payload, indent=2))
        print(f"results written to {out.relative_to(ROOT)}", flush=True)
    return 0 if all(r.get("error") is None for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())

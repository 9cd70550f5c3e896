"""girder-worker against plain Celery, on the same broker, backend and pool.

``hatch run bench:run [options]`` (``--quick`` for a short run, ``--help`` for
the rest). For each broker (embedded, RabbitMQ, Redis) and pool (prefork -c 2,
solo; threads on request) it compares girder-worker's worker (``girder-worker``)
with a plain Celery worker (``bench/plain_app.py``) and measures, per side:

1. round-trip latency of ``add(1, 2)``: N sequential ``apply_async().get()``
   after a warm-up (median, p95);
2. throughput: M ``add`` tasks submitted, then every result awaited (median
   over the rounds, and the best round);
3. worker start to ready: spawn to the `` ready.`` log line (median of a few
   starts, one worker at a time, the two sides alternating), from compiled
   bytecode, as a deployment starts (see ``compile_bytecode``);
4. ``fibonacci(26)`` end to end: gwexample's task through the plugin against
   the same recursive function as a plain ``@app.task``;
5. the client's publish rate: the throughput rounds' M submissions, timed apart;
6. the worker's peak memory: the proportional set size (PSS) of its whole process
   group (main and pool processes, shared pages counted once), sampled every 0.2 s
   while both workers are under load.

For 1, 2 and 4 both workers are up, each with its own client process, and the
sides take turns round by round (which one goes first alternates), so a change
in the machine's load hits both alike; "paired range" is the spread of the
per-round ratios.

It prints a table per broker and pool with ours/plain ratios and the goals, and
writes every figure to ``bench/results/<timestamp>.json``. It talks only to
127.0.0.1, uses its own queue names, deletes its queues and results afterwards,
and kills every worker's process group at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
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
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from queue import Empty, Queue
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
# broker, and the same log level (the " ready." line is logged at info). Worker
# heartbeats stay on, as by default: their 2 s timer also bounds a pause of Celery's
# event loop (solo pool on RabbitMQ) that otherwise lasts until its 10 s poll timeout.
COMMON_WORKER_OPTS = ["-l", "info", "--without-gossip", "--without-mingle"]
READY_TIMEOUT = 90.0
# A warm shutdown takes Celery 2-10 s here (10 s on RabbitMQ), so a worker gets this
# long after SIGTERM before its whole process group gets SIGKILL.
STOP_GRACE = 2.0
# In a throughput round, one result waited for this long means the worker paused.
PAUSE_SECONDS = 0.5

# The goals: (key, description, comparison, bound).
GOALS = [
    ("latency_median", "latency within 5% (median ours/plain <= 1.05)", "le", 1.05),
    ("throughput", "throughput within 5% (ours/plain >= 0.95)", "ge", 0.95),
    ("start", "worker start within 10% (median ours/plain <= 1.10)", "le", 1.10),
    ("publish", "client publish rate within 10% (median ours/plain >= 0.90)", "ge", 0.90),
    ("memory", "worker peak memory within 10% (PSS ours/plain <= 1.10)", "le", 1.10),
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

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to the main process, then SIGKILL to whatever of its group is left."""
        pgid = self.proc.pid  # start_new_session: the group is the worker's pid
        if self.proc.poll() is None and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        self._log.close()


def group_pss_kib(pgid: int) -> int:
    """The proportional set size (kB) of every process in process group ``pgid``: a
    worker with its pool processes, shared pages counted once across them (Linux)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in Path(entry.path, "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return total


class PeakMemory:
    """The highest :func:`group_pss_kib` of each worker, sampled every 0.2 s in a thread."""

    def __init__(self) -> None:
        self.workers: dict[str, Worker] = {}
        self.peak_kib: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for side, worker in list(self.workers.items()):
                self.peak_kib[side] = max(self.peak_kib.get(side, 0), group_pss_kib(worker.proc.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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


def side_env(side: str, broker: str, data_dir: Path, prefetch: str | None = None) -> dict[str, str]:
    env = base_env()
    urls = BROKERS[broker]
    if side == "ours":
        if prefetch is not None:
            env["GIRDER_WORKER_PREFETCH"] = prefetch
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
    opts = [*COMMON_WORKER_OPTS, *pool_opts(pool, concurrency), "-Q", queue, "-n", node]
    if side == "ours":
        exe = shutil.which("girder-worker", path=os.path.dirname(sys.executable)) or "girder-worker"
        return [exe, *opts, "-I", "bench.gw_bench_tasks"]
    return [sys.executable, "-m", "celery", "-A", "bench.plain_app", "worker", *opts]


# Queues a girder-worker worker declares for itself, bound to Celery's control
# exchange, which outlive the worker; the benchmark removes its workers' ones.
OWN_WORKER_QUEUES = ("{node}.girder_worker.cancel",)
CONTROL_EXCHANGE = "celery.pidbox"


def delete_queues(broker: str, queues: list[str], worker_queues: list[str]) -> None:
    """Remove a run's task queues and its workers' own queues (with, on Redis,
    their bindings) from a shared broker."""
    urls = BROKERS[broker]
    if urls is None:
        return
    from kombu import Connection, Exchange, Queue

    with Connection(urls[0], connect_timeout=5) as conn:
        channel = conn.channel()
        for name, exchange in [*((q, Exchange(q, type="direct")) for q in queues),
                               *((q, Exchange(CONTROL_EXCHANGE, type="fanout")) for q in worker_queues)]:  # fmt: skip
            try:
                if broker == "redis":
                    # kombu's Redis channel deletes the bindings it knows of: declare them first.
                    Queue(name, exchange, routing_key=name if exchange.type == "direct" else "")(channel).declare()
                    channel.queue_delete(name)
                else:
                    channel.queue_delete(name)
                    if exchange.name == name:
                        channel.exchange_delete(name)
            except Exception as exc:
                log(f"could not delete queue {name} on {broker}: {exc}")
        channel.close()


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


class ClientProc:
    """A ``bench.client`` process for one side, asked one command at a time.

    ``module`` is the client's module: ``bench.client``, or one that extends it
    (``bench.cancel_client``) and takes the same options.
    """

    def __init__(self, side: str, env: dict[str, str], queue: str, poll: float, args: argparse.Namespace,
                 log_path: Path, module: str = "bench.client") -> None:  # fmt: skip
        self.side = side
        self.timeout = args.phase_timeout + 30
        self.log_path = log_path
        self._err = log_path.open("wb")
        cmd = [
            sys.executable, "-m", module, "--side", side, "--queue", queue,
            "--poll-interval", str(poll), "--phase-timeout", str(args.phase_timeout),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            text=True, start_new_session=True,
        )  # fmt: skip
        self._lines: Queue[str | None] = Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: reported below
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except Empty:
                raise RuntimeError(f"{self.side} client: no answer to {op!r} in {self.timeout:.0f}s") from None
            if line is None:
                raise RuntimeError(f"{self.side} client exited during {op!r}:\n{self.stderr_tail()}")
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # not an answer
            if isinstance(reply, dict) and reply.get("op") == op:
                if "error" in reply:
                    raise RuntimeError(f"{self.side} client, {op}: {reply['error']}")
                return reply

    def stderr_tail(self, lines: int = 30) -> str:
        self._err.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
            except Exception as exc:  # (it gets killed below)
                log(f"{self.side} client did not quit cleanly: {exc}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        self._err.close()


@contextlib.contextmanager
def running(cmd: list[str], env: dict[str, str], log_path: Path, grace: float = STOP_GRACE) -> Iterator[Worker]:
    worker = Worker(cmd, env, log_path)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop(grace)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_config(broker: str, pool: str, index: int, args: argparse.Namespace, run_id: str, work: Path) -> dict[str, Any]:
    tag = f"{broker}-{pool}"
    queues = {side: f"gwbench-{run_id}-{tag}-{side}" for side in SIDES}
    nodes = {side: f"gwbench-{side}-{tag}-{run_id}@{socket.gethostname()}" for side in SIDES}
    poll = embedded_poll_interval() if BROKERS[broker] is None else 0.0
    record: dict[str, Any] = {"broker": broker, "pool": pool, "queues": queues, "nodes": nodes, "sides": {}}
    commands: dict[str, list[str]] = {}
    for side in SIDES:
        record["sides"][side] = {
            "starts_s": [], "latency_s": [], "latency_round_medians_s": [], "throughput": [], "fibonacci_s": [],
            "peak_pss_kib": None,
        }  # fmt: skip
        commands[side] = worker_cmd(side, pool, args.concurrency, queues[side], nodes[side])
    record["commands"] = {side: " ".join(cmd) for side, cmd in commands.items()}
    sides = record["sides"]

    def fresh(side: str, what: str) -> tuple[dict[str, str], Path]:
        # A fresh data directory each time (used by the embedded broker only).
        data_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-{side}-{what}-", dir=work))
        return side_env(side, broker, data_dir, args.prefetch), data_dir

    def order(i: int) -> tuple[str, ...]:
        # Which side goes first alternates, round by round and configuration by configuration.
        return SIDES if (i + index) % 2 == 0 else SIDES[::-1]

    try:
        # 3. Start to ready: one worker at a time, nothing else running.
        for i in range(args.starts):
            for side in order(i):
                env, data_dir = fresh(side, f"start{i}")
                # It did no work: its process group is killed at once.
                with running(commands[side], env, data_dir / "worker.log", grace=0) as worker:
                    assert worker.ready_seconds is not None
                    sides[side]["starts_s"].append(worker.ready_seconds)

        # 1, 2, 4. Both workers up (each idle while the other side is measured),
        # one client per side, and the sides alternating round by round.
        memory = PeakMemory()
        with contextlib.ExitStack() as stack:
            clients: dict[str, ClientProc] = {}
            for side in SIDES:
                env, data_dir = fresh(side, "load")
                memory.workers[side] = stack.enter_context(running(commands[side], env, data_dir / "worker.log"))
                clients[side] = ClientProc(side, env, queues[side], poll, args, data_dir / "client.log")
                stack.callback(clients[side].close)
            for side in SIDES:
                sides[side].update(clients[side].ask("hello"))
                clients[side].ask("warmup", count=args.warmup)
            memory.start()
            stack.callback(memory.stop)
            log(f"{tag}: latency, {args.rounds} rounds")
            for i, count in enumerate(split(args.n, args.rounds)):
                for side in order(i):
                    samples = clients[side].ask("latency", count=count)["latency_s"]
                    sides[side]["latency_s"].extend(samples)
                    sides[side]["latency_round_medians_s"].append(statistics.median(samples))
            log(f"{tag}: throughput, {args.rounds} rounds of {args.m}")
            for i in range(args.rounds):
                for side in order(i):
                    reply = clients[side].ask("throughput", count=args.m)
                    keys = ("tasks", "seconds", "submit_seconds", "longest_wait_seconds")
                    sides[side]["throughput"].append({k: reply[k] for k in keys})
            log(f"{tag}: fibonacci({args.fib_n}), {args.fib_runs} runs")
            for i in range(args.fib_runs):
                for side in order(i):
                    sides[side]["fibonacci_s"].append(clients[side].ask("fibonacci", n=args.fib_n)["seconds"])
            memory.stop()
            for side in SIDES:
                sides[side]["peak_pss_kib"] = memory.peak_kib.get(side)
    finally:
        try:
            own = [q.format(node=nodes["ours"]) for q in OWN_WORKER_QUEUES]
            delete_queues(broker, [queues[side] for side in SIDES], own)
        except Exception as exc:  # cleanup must not lose the figures
            log(f"could not clean up on {broker}: {exc}")
    return record


def _paired_range(ours: list[float], plain: list[float]) -> list[float] | None:
    pairs = [o / p for o, p in zip(ours, plain, strict=False) if p]
    return [min(pairs), max(pairs)] if pairs else None


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, dict[str, float | None]] = {}
    for side in SIDES:
        s = record["sides"][side]
        lat = s.get("latency_s") or []
        rates = [t["tasks"] / t["seconds"] for t in s.get("throughput") or []]
        publish = [t["tasks"] / t["submit_seconds"] for t in s.get("throughput") or [] if t.get("submit_seconds")]
        starts, fib = s.get("starts_s") or [], s.get("fibonacci_s") or []
        figures[side] = {
            "latency_median_ms": statistics.median(lat) * 1000 if lat else None,
            "latency_p95_ms": percentile(lat, 0.95) * 1000 if lat else None,
            "throughput_per_s": statistics.median(rates) if rates else None,
            "throughput_best_per_s": max(rates) if rates else None,
            "start_median_s": statistics.median(starts) if starts else None,
            "fibonacci_median_s": statistics.median(fib) if fib else None,
            "publish_per_s": statistics.median(publish) if publish else None,
            "peak_pss_mb": s["peak_pss_kib"] / 1024 if s.get("peak_pss_kib") else None,
        }
    ours, plain = figures["ours"], figures["plain"]
    ratios = {
        "latency_median": ratio(ours["latency_median_ms"], plain["latency_median_ms"]),
        "latency_p95": ratio(ours["latency_p95_ms"], plain["latency_p95_ms"]),
        "throughput": ratio(ours["throughput_per_s"], plain["throughput_per_s"]),
        "throughput_best": ratio(ours["throughput_best_per_s"], plain["throughput_best_per_s"]),
        "start": ratio(ours["start_median_s"], plain["start_median_s"]),
        "fibonacci": ratio(ours["fibonacci_median_s"], plain["fibonacci_median_s"]),
        "publish": ratio(ours["publish_per_s"], plain["publish_per_s"]),
        "memory": ratio(ours["peak_pss_mb"], plain["peak_pss_mb"]),
    }
    so, sp = record["sides"]["ours"], record["sides"]["plain"]
    # The spread of the ratio over paired rounds: a hint of how much noise there is.
    ranges = {
        "latency_median": _paired_range(so.get("latency_round_medians_s", []), sp.get("latency_round_medians_s", [])),
        "throughput": _paired_range(
            [t["tasks"] / t["seconds"] for t in so.get("throughput", [])],
            [t["tasks"] / t["seconds"] for t in sp.get("throughput", [])],
        ),
        "start": _paired_range(so.get("starts_s", []), sp.get("starts_s", [])),
        "fibonacci": _paired_range(so.get("fibonacci_s", []), sp.get("fibonacci_s", [])),
        "publish": _paired_range(
            [t["tasks"] / t["submit_seconds"] for t in so.get("throughput", []) if t.get("submit_seconds")],
            [t["tasks"] / t["submit_seconds"] for t in sp.get("throughput", []) if t.get("submit_seconds")],
        ),
    }
    # Throughput rounds in which the worker paused: one result took PAUSE_SECONDS or
    # more to come while the others take milliseconds.
    slow = {}
    for side in SIDES:
        rounds = record["sides"][side].get("throughput", [])
        slow[side] = sum(1 for t in rounds if t.get("longest_wait_seconds", 0) >= PAUSE_SECONDS)
    goals = {}
    for key, _, op, bound in GOALS:
        value = ratios[key]
        goals[key] = None if value is None else (value <= bound if op == "le" else value >= bound)
    return {
        "ours": ours, "plain": plain, "ratios": ratios, "ratio_ranges": ranges, "goals": goals,
        "slow_throughput_rounds": slow,
    }  # fmt: skip


# --- output ------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(record: dict[str, Any], args: argparse.Namespace) -> str:
    summary = record["summary"]
    ours, plain, ratios, ranges = summary["ours"], summary["plain"], summary["ratios"], summary["ratio_ranges"]
    pool = record["pool"] + ("" if record["pool"] == "solo" else f" -c {args.concurrency}")
    lines = [f"== {record['broker']} / {pool} =="]
    if record.get("error"):
        lines.append(f"   ERROR: {record['error'].splitlines()[0]}")
    header = f"   {'metric':<36}{'girder-worker':>14}{'plain Celery':>14}{'ours/plain':>12}{'paired range':>16}"
    lines += [header, "   " + "-" * (len(header) - 3)]
    rows = [
        (f"latency median (ms, N={args.n})", "latency_median_ms", "latency_median", ".2f"),
        ("latency p95 (ms)", "latency_p95_ms", "latency_p95", ".2f"),
        (f"throughput (tasks/s, {args.rounds}x M={args.m})", "throughput_per_s", "throughput", ".1f"),
        ("throughput, best round (tasks/s)", "throughput_best_per_s", "throughput_best", ".1f"),
        (f"start to ready (s, median of {args.starts})", "start_median_s", "start", ".3f"),
        (f"fibonacci({args.fib_n}) (s, median of {args.fib_runs})", "fibonacci_median_s", "fibonacci", ".3f"),
        ("client publish rate (tasks/s)", "publish_per_s", "publish", ".1f"),
        ("worker peak memory (PSS, MB)", "peak_pss_mb", "memory", ".1f"),
    ]
    for label, key, rkey, spec in rows:
        span = ranges.get(rkey)
        span_text = f"{span[0]:.3f}-{span[1]:.3f}" if span else ""
        lines.append(
            f"   {label:<36}{fmt(ours[key], spec):>14}{fmt(plain[key], spec):>14}"
            f"{fmt(ratios[rkey], '.3f'):>12}{span_text:>16}"
        )
    slow = summary.get("slow_throughput_rounds") or {}
    if any(slow.values()):
        lines.append(
            f"   note: throughput rounds with a pause of {PAUSE_SECONDS} s or more: ours {slow['ours']}/{args.rounds}, "
            f"plain {slow['plain']}/{args.rounds}\n"
            "         (pauses of the worker: with the solo pool on RabbitMQ, Celery waits for its next timer tick)"
        )
    for key, text, _, _ in GOALS:
        met = summary["goals"][key]
        verdict = "not measured" if met is None else ("MET" if met else "NOT MET")
        lines.append(f"   goal: {text}: {fmt(ratios[key], '.3f')} -> {verdict}")
    return "\n".join(lines)


def preamble(args: argparse.Namespace, started: str) -> str:
    conc = f" -c {args.concurrency}"
    poll = embedded_poll_interval()
    return "\n".join(
        [
            f"girder-worker vs plain Celery, {started}; Python {platform.python_version()}, "
            f"celery {version('celery')}, kombu {version('kombu')}, "
            f"girder-worker-core {version('girder-worker-core')}, "
            f"{os.cpu_count()} CPUs; code: {git_state()}, sources {source_digest()}; "
            f"load average at start {load_average()}",
            f"ours:  girder-worker {' '.join(COMMON_WORKER_OPTS)} -P <pool>[{conc}] -Q <queue> -I bench.gw_bench_tasks",
            f"       GIRDER_WORKER_PREFETCH={args.prefetch or 'off (unset: fair dispatch)'}",
            "       (girder_worker.app.app with its loader, plugins and task class; fibonacci is gwexample's task",
            "        loaded through the plugin; add is bench/gw_bench_tasks.py, imported by celery worker's -I option)",
            f"plain: python -m celery -A bench.plain_app worker {' '.join(COMMON_WORKER_OPTS)}",
            f"       -P <pool>[{conc}] -Q <queue>",
            "       (a bare celery.Celery app; add and fibonacci are plain @app.task, recursion through the task;",
            "        task_time_limit 300, which gwexample's plugin sets on ours)",
            "embedded: GIRDER_WORKER_DATA_DIR=<fresh temp dir>; plain Celery gets",
            "       embedded_settings(<its own fresh temp dir>):",
            f"       the same transport class, folders layout and {poll}s polling; file:// results, which both",
            f"       clients poll every {poll}s (girder-worker's default; passed to plain Celery's get())",
            f"rabbitmq: {RABBITMQ_URL} with results in {RABBITMQ_BACKEND}; redis: {REDIS_BROKER_URL} (results too)",
            "starts: one worker at a time, the sides alternating, from compiled bytecode (below); latency,",
            "       throughput and fibonacci: both workers",
            "       up, one client per side, the sides alternating round by round (paired range: min-max of the",
            "       per-round ours/plain ratios); one unique queue per side and run, deleted afterwards",
        ]
    )


def git_state() -> str:
    """The commit benchmarked, and whether the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "packages"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git work tree)"
    return f"{head}" + (f" with {len(changed)} uncommitted change(s) under packages/" if changed else "")


def source_digest() -> str:
    """A digest of the packages' Python sources: whether the code changed during a run."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted((ROOT / "packages").glob("*/src/**/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="embedded,rabbitmq,redis", help="comma-separated: embedded,rabbitmq,redis")
    p.add_argument("--pools", default="prefork,solo", help="comma-separated: prefork,solo,threads")
    p.add_argument("--concurrency", "-c", type=int, default=2, help="prefork/threads concurrency (default 2)")
    p.add_argument("--n", type=int, help="sequential round trips for latency, over all rounds (default 300; quick 60)")
    p.add_argument("--m", type=int, help="tasks in one throughput batch (default 1000; quick 200)")
    p.add_argument("--rounds", type=int, help="paired rounds of latency and throughput (default 5; quick 2)")
    p.add_argument("--warmup", type=int, help="warm-up round trips (default 20; quick 5)")
    p.add_argument("--starts", type=int, help="worker starts per side (default 5; quick 2)")
    p.add_argument("--fib-n", type=int, default=26, help="the Fibonacci argument (default 26)")
    p.add_argument("--fib-runs", type=int, help="fibonacci runs per side (default 3; quick 1)")
    p.add_argument("--phase-timeout", type=float, default=180.0, help="seconds one phase may take")
    p.add_argument("--quick", action="store_true", help="small N, M and repeat counts")
    p.add_argument(
        "--prefetch", help="GIRDER_WORKER_PREFETCH of girder-worker's workers (default unset: fair dispatch)"
    )
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/<timestamp>.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' logs and data directories")
    args = p.parse_args(argv)
    defaults = {
        "n": (300, 60), "m": (1000, 200), "rounds": (5, 2), "warmup": (20, 5), "starts": (5, 2), "fib_runs": (3, 1),
    }  # fmt: skip
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in ("n", "m", "rounds", "starts", "fib_runs", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.n < args.rounds:
        p.error("--n must be at least --rounds")
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.pool_list = [x.strip() for x in args.pools.split(",") if x.strip()]
    for b in args.broker_list:
        if b not in BROKERS:
            p.error(f"unknown broker {b!r}; choose from {', '.join(BROKERS)}")
    for x in args.pool_list:
        if x not in POOLS:
            p.error(f"unknown pool {x!r}; choose from {', '.join(POOLS)}")
    return args


def drive(
    args: argparse.Namespace,
    *,
    name: str,
    preamble: Callable[[argparse.Namespace, str], str],
    run_config: Callable[..., dict[str, Any]],
    empty: Callable[[str, str, str], dict[str, Any]],
    summarize: Callable[[dict[str, Any]], dict[str, Any]],
    table: Callable[[dict[str, Any], argparse.Namespace], str],
    goals_met: Callable[[list[dict[str, Any]]], list[bool | None]],
    payload: dict[str, Any],
    overview: Callable[[list[dict[str, Any]], argparse.Namespace], str] | None = None,
) -> int:
    """Run ``run_config`` for every broker and pool, print each table, the goals met, and
    write the JSON results (``bench/results/<name-><timestamp>.json``): the part every
    benchmark of girder-worker against plain Celery shares."""
    # On SIGTERM, unwind through the finally blocks that stop the workers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    now = dt.datetime.now()
    started = now.isoformat(timespec="seconds")
    run_id = f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    t_start = time.monotonic()
    load_at_start = load_average()
    code_at_start = (git_state(), source_digest())
    print(preamble(args, started), flush=True)
    work = Path(tempfile.mkdtemp(prefix=f"gw{name or 'bench'}-"))
    records: list[dict[str, Any]] = []
    try:
        index = 0
        for broker in args.broker_list:
            missing = [port for port in PORTS.get(broker, []) if not reachable(port)]
            for pool in args.pool_list:
                if missing:
                    record = empty(broker, pool, f"nothing listens on 127.0.0.1 port(s) {missing}; skipped")
                else:
                    log(f"{broker} / {pool}")
                    try:
                        record = run_config(broker, pool, index, args, run_id, work)
                    except Exception as exc:
                        log(f"{broker} / {pool} failed: {exc}")
                        record = empty(broker, pool, str(exc))
                    index += 1
                record["summary"] = summarize(record)
                records.append(record)
                print("\n" + table(record, args), flush=True)
    finally:
        if args.keep_logs:
            log(f"logs and data directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if overview is not None:
        print("\n" + overview(records, args), flush=True)
    code_at_end = (git_state(), source_digest())
    if code_at_end[1] != code_at_start[1]:
        print(
            f"\nWARNING: the sources under packages/ changed during the run (now {code_at_end[0]}, "
            f"sources {code_at_end[1]}): later configurations may have run other code than earlier ones",
            flush=True,
        )
    met = goals_met(records)
    elapsed = time.monotonic() - t_start
    print(
        f"\ngoals met: {sum(1 for m in met if m)} of {len(met)} "
        f"({sum(1 for m in met if m is None)} not measured); total time {elapsed:.0f}s; "
        f"load average at start {load_at_start}, at end {load_average()}",
        flush=True,
    )
    if not args.no_json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"{name + '-' if name else ''}{now:%Y%m%dT%H%M%S}.json"
        document = {
            "started": started,
            "seconds": elapsed,
            "args": vars(args),
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "code": {"start": list(code_at_start), "end": list(code_at_end)},
            "load_average": {"start": load_at_start, "end": load_average()},
            "versions": {d: version(d) for d in ("celery", "kombu", "girder-worker-core", "girder-worker-utils")},
            **payload,
            "results": records,
        }
        out.write_text(json.dumps(document, indent=2))
        print(f"results written to {out.relative_to(ROOT)}", flush=True)
    return 0 if all(r.get("error") is None for r in records) else 1


def compile_bytecode() -> str:
    """Compile the environment's installed packages and this checkout's sources to bytecode.

    pip compiles what it installs, and a Python that may write bytecode keeps what it
    compiled at a first start, so a deployed worker starts from bytecode. An environment
    made without it (uv, hatch) under ``PYTHONDONTWRITEBYTECODE`` compiles every module of
    Celery, kombu, redis-py and girder-worker from source at every start, about 0.8 s of
    a 1.1 s start on this machine: the start figures would measure the compiler. Both
    sides start from the same compiled files. Returns a line for the preamble.
    """
    import sysconfig

    paths = sysconfig.get_paths()
    folders = dict.fromkeys([paths["purelib"], paths["platlib"]])
    folders.update(dict.fromkeys(str(p) for p in sorted((ROOT / "packages").glob("*/src"))))
    folders[str(ROOT / "bench")] = None
    t0 = time.monotonic()
    # Its exit status is 1 when some file cannot be compiled (a template, a test written for
    # another Python in a third-party package): those files are never imported.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *folders], cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
    return f"bytecode: compileall of {len(folders)} folders first ({time.monotonic() - t0:.1f}s), as pip installs"


def _empty(broker: str, pool: str, error: str) -> dict[str, Any]:
    return {"broker": broker, "pool": pool, "error": error, "sides": {s: {"starts_s": []} for s in SIDES}}


def main(argv: list[str] | None = None) -> int:
    compiled = compile_bytecode()
    return drive(
        parse_args(argv),
        name="",
        preamble=lambda args, started: preamble(args, started) + "\n" + compiled,
        run_config=run_config,
        empty=_empty,
        summarize=summarize,
        table=table,
        goals_met=lambda records: [r["summary"]["goals"][k] for r in records for k, *_ in GOALS],
        payload={"goals": [{"key": k, "text": t, "bound": b} for k, t, _, b in GOALS]},
    )


if __name__ == "__main__":
    sys.exit(main())

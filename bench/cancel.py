"""Cancellation: girder-worker's ``self.cancelled`` against Celery's ``AbortableTask``.

``hatch run bench:cancel [options]`` (``--help`` for them). For each broker
(embedded, RabbitMQ, Redis) and pool (prefork -c 2, threads -c 2, solo) it
starts girder-worker's worker and a plain Celery worker exactly as
``bench/run.py`` does (its helpers, imported), and measures:

1. the cost of one cancellation check inside a running task: batches of
   ``self.cancelled`` reads (ours) and of ``AbortableTask.is_aborted()`` calls,
   a result-backend round trip (plain), timed in the worker; the median over
   the batches of the time per check;
2. cancel latency: a task loops ``while not self.cancelled`` (plain: ``while
   not self.is_aborted()``) and writes ``time.time()`` when it sees the cancel;
   once it runs, the client takes ``time.time()`` and cancels it with
   ``girder_worker.cancel(result, app=app)`` or ``result.revoke()`` (ours) or
   ``AbortableAsyncResult(id).abort()`` (plain), the three interleaved trial by
   trial; p50, p95 and max. girder-worker's worker also notes when its cancel
   listener delivers each cancel (``BENCH_CANCEL_TRACE_DIR``, see
   ``bench/gw_bench_tasks.py``; ``--no-trace`` turns that off), which splits the
   latency into the way to the worker's listener and the way on to the task;
3. throughput of trivial ``add`` tasks, with girder-worker's cancellation
   machinery on, against plain Celery: ``bench/client.py``'s measurement,
   rounds alternating between the sides.

It prints a table per broker and pool with ratios and the goals, a summary,
and writes every figure to ``bench/results/cancel-<timestamp>.json``. It talks
only to 127.0.0.1, uses its own queue names, deletes its queues, results and
durable cancel records afterwards, and kills every worker's process group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/cancel.py``
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BROKERS,
    COMMON_WORKER_OPTS,
    OWN_WORKER_QUEUES,
    POOLS,
    RABBITMQ_BACKEND,
    RABBITMQ_URL,
    REDIS_BROKER_URL,
    SIDES,
    ClientProc,
    delete_queues,
    drive,
    embedded_poll_interval,
    git_state,
    load_average,
    log,
    percentile,
    ratio,
    running,
    side_env,
    source_digest,
    worker_cmd,
)

# The ways to cancel, and which side each one belongs to.
METHODS = {"cancel": "ours", "revoke": "ours", "abort": "plain"}
CALLS = {
    "cancel": "girder_worker.cancel(result, app=app)",
    "revoke": "result.revoke()",
    "abort": "AbortableAsyncResult(id).abort()",
}
READ_GOAL_NS = 1000.0
LATENCY_GOAL_MS = {"embedded": 100.0, "rabbitmq": 15.0, "redis": 15.0}
THROUGHPUT_GOAL = 0.95


# --- one broker and pool -----------------------------------------------------


def run_config(broker: str, pool: str, index: int, args: argparse.Namespace, run_id: str, work: Path) -> dict[str, Any]:
    tag = f"{broker}-{pool}"
    queues = {side: f"gwcancel-{run_id}-{tag}-{side}" for side in SIDES}
    nodes = {side: f"gwcancel-{side}-{tag}-{run_id}@{socket.gethostname()}" for side in SIDES}
    poll = embedded_poll_interval() if BROKERS[broker] is None else 0.0
    commands = {side: worker_cmd(side, pool, args.concurrency, queues[side], nodes[side]) for side in SIDES}
    record: dict[str, Any] = {
        "broker": broker, "pool": pool, "queues": queues, "nodes": nodes,
        "commands": {side: " ".join(cmd) for side, cmd in commands.items()},
        "load_average": {"start": load_average()},
        "read_cost": {side: {"per_read_ns": [], "loop_ns": []} for side in SIDES},
        "cancel": {method: [] for method in METHODS},
        "throughput": {side: [] for side in SIDES},
    }  # fmt: skip
    markers = Path(tempfile.mkdtemp(prefix=f"{tag}-markers-", dir=work))

    def order(i: int) -> tuple[str, ...]:
        # Which side goes first alternates, round by round and configuration by configuration.
        return SIDES if (i + index) % 2 == 0 else SIDES[::-1]

    try:
        with contextlib.ExitStack() as stack:
            clients: dict[str, ClientProc] = {}
            for side in SIDES:
                data_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-{side}-", dir=work))
                env = side_env(side, broker, data_dir)
                worker_env = dict(env)
                if side == "ours" and args.trace:
                    worker_env["BENCH_CANCEL_TRACE_DIR"] = str(markers)
                stack.enter_context(running(commands[side], worker_env, data_dir / "worker.log"))
                clients[side] = ClientProc(
                    side, env, queues[side], poll, args, data_dir / "client.log", module="bench.cancel_client"
                )
                stack.callback(clients[side].close)
            for side in SIDES:
                record.setdefault("hello", {})[side] = clients[side].ask("hello")
                clients[side].ask("warmup", count=args.warmup)

            # 1. The cost of one check, in the worker.
            log(f"{tag}: cost of one check, {args.read_rounds} rounds")
            sizes = {"ours": (args.read_batch, args.read_batches), "plain": (args.abort_batch, args.abort_batches)}
            for i in range(args.read_rounds):
                for side in order(i):
                    batch, batches = sizes[side]
                    reply = clients[side].ask("read_cost", batch=batch, batches=batches)
                    for key in ("per_read_ns", "loop_ns"):
                        record["read_cost"][side][key].extend(reply[key])

            # 2. Cancel latency, the three methods interleaved trial by trial.
            log(f"{tag}: cancel latency, {args.cancel_warmup} + {args.n} trials per method")
            methods = list(METHODS)
            for i in range(args.cancel_warmup + args.n):
                shift = (i + index) % len(methods)
                for method in methods[shift:] + methods[:shift]:
                    reply = clients[METHODS[method]].ask(
                        "cancel_latency", method=method, marker_dir=str(markers), settle=args.settle
                    )
                    if i >= args.cancel_warmup:
                        reply.pop("op", None)
                        reply["trial"] = i - args.cancel_warmup
                        record["cancel"][method].append(reply)

            # 3. Throughput of trivial tasks.
            log(f"{tag}: throughput, {args.rounds} rounds of {args.m}")
            for i in range(args.rounds):
                for side in order(i):
                    reply = clients[side].ask("throughput", count=args.m)
                    keys = ("tasks", "seconds", "submit_seconds", "longest_wait_seconds")
                    record["throughput"][side].append({k: reply[k] for k in keys})
    finally:
        record["load_average"]["end"] = load_average()
        try:
            own = [q.format(node=nodes["ours"]) for q in OWN_WORKER_QUEUES]
            delete_queues(broker, [queues[side] for side in SIDES], own)
        except Exception as exc:  # cleanup must not lose the figures
            log(f"could not clean up on {broker}: {exc}")
    return record


# --- figures -----------------------------------------------------------------


def _latency_figures(trials: list[dict[str, Any]]) -> dict[str, Any]:
    ms = [t["latency_s"] * 1000 for t in trials]
    calls = [t["call_s"] * 1000 for t in trials]
    states: dict[str, int] = {}
    for t in trials:
        states[t["final_state"]] = states.get(t["final_state"], 0) + 1
    if not ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "call_p50_ms": None, "states": states}
    # Where the time went, when the worker noted its listener's delivery.
    traced = [t for t in trials if t.get("delivered_s") is not None]
    to_listener = [t["delivered_s"] * 1000 for t in traced]
    to_task = [(t["latency_s"] - t["delivered_s"]) * 1000 for t in traced]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "max_ms": max(ms),
        "min_ms": min(ms),
        "call_p50_ms": statistics.median(calls),
        "call_p95_ms": percentile(calls, 0.95),
        "call_max_ms": max(calls),
        "traced": len(traced),
        "to_listener_p50_ms": statistics.median(to_listener) if traced else None,
        "to_listener_p95_ms": percentile(to_listener, 0.95) if traced else None,
        "to_task_p50_ms": statistics.median(to_task) if traced else None,
        "to_task_p95_ms": percentile(to_task, 0.95) if traced else None,
        "states": states,
    }


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    read = {}
    for side in SIDES:
        r = record.get("read_cost", {}).get(side, {})
        per, loop = r.get("per_read_ns") or [], r.get("loop_ns") or []
        read[side] = {
            "median_ns": statistics.median(per) if per else None,
            "loop_median_ns": statistics.median(loop) if loop else None,
            # Net of the loop that does the reads, batch by batch.
            "net_median_ns": statistics.median(p - q for p, q in zip(per, loop, strict=True)) if per else None,
        }
    latency = {method: _latency_figures(record.get("cancel", {}).get(method, [])) for method in METHODS}
    rates = {side: [t["tasks"] / t["seconds"] for t in record.get("throughput", {}).get(side, [])] for side in SIDES}
    throughput = {
        side: {
            "median_per_s": statistics.median(rates[side]) if rates[side] else None,
            "best_per_s": max(rates[side]) if rates[side] else None,
        }
        for side in SIDES
    }
    pairs = [o / p for o, p in zip(rates["ours"], rates["plain"], strict=False) if p]
    ratios = {
        "read": ratio(read["ours"]["median_ns"], read["plain"]["median_ns"]),
        "cancel_p50": ratio(latency["cancel"]["p50_ms"], latency["abort"]["p50_ms"]),
        "cancel_p95": ratio(latency["cancel"]["p95_ms"], latency["abort"]["p95_ms"]),
        "cancel_max": ratio(latency["cancel"]["max_ms"], latency["abort"]["max_ms"]),
        "revoke_p50": ratio(latency["revoke"]["p50_ms"], latency["abort"]["p50_ms"]),
        "revoke_p95": ratio(latency["revoke"]["p95_ms"], latency["abort"]["p95_ms"]),
        "revoke_max": ratio(latency["revoke"]["max_ms"], latency["abort"]["max_ms"]),
        "throughput": ratio(throughput["ours"]["median_per_s"], throughput["plain"]["median_per_s"]),
        "throughput_best": ratio(throughput["ours"]["best_per_s"], throughput["plain"]["best_per_s"]),
    }
    bound = LATENCY_GOAL_MS[record["broker"]]

    def check(value: float | None, op: str, limit: float) -> bool | None:
        return None if value is None else (value <= limit if op == "le" else value >= limit)

    goals = [
        {"key": "read", "text": f"one self.cancelled read <= {READ_GOAL_NS:.0f} ns median",
         "value": read["ours"]["median_ns"], "unit": "ns", "met": check(read["ours"]["median_ns"], "le", READ_GOAL_NS)},
        {"key": "cancel_p95", "text": f"cancel() latency p95 <= {bound:.0f} ms",
         "value": latency["cancel"]["p95_ms"], "unit": "ms", "met": check(latency["cancel"]["p95_ms"], "le", bound)},
        {"key": "revoke_p95", "text": f"revoke() latency p95 <= {bound:.0f} ms",
         "value": latency["revoke"]["p95_ms"], "unit": "ms", "met": check(latency["revoke"]["p95_ms"], "le", bound)},
        {"key": "throughput", "text": f"throughput within 5% (ours/plain >= {THROUGHPUT_GOAL})",
         "value": ratios["throughput"], "unit": "", "met": check(ratios["throughput"], "ge", THROUGHPUT_GOAL)},
    ]  # fmt: skip
    return {
        "read": read, "latency": latency, "throughput": throughput, "ratios": ratios,
        "throughput_paired_range": [min(pairs), max(pairs)] if pairs else None, "goals": goals,
    }  # fmt: skip


# --- output ------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _slowest(trials: list[dict[str, Any]], count: int = 3) -> str:
    worst = sorted(trials, key=lambda t: t["latency_s"], reverse=True)[:count]

    def split(t: dict[str, Any]) -> str:
        listener = "" if t.get("delivered_s") is None else f", at listener {t['delivered_s'] * 1000:.1f}"
        return f"{t['latency_s'] * 1000:.1f} (call {t['call_s'] * 1000:.1f}{listener}, #{t['trial']})"

    return ", ".join(split(t) for t in worst)


def table(record: dict[str, Any], args: argparse.Namespace) -> str:
    pool = record["pool"] + ("" if record["pool"] == "solo" else f" -c {args.concurrency}")
    loads = record.get("load_average", {})
    lines = [f"== {record['broker']} / {pool} ==  (load average {loads.get('start')} -> {loads.get('end')})"]
    if record.get("error"):
        lines.append(f"   ERROR: {record['error'].splitlines()[0]}")
    s = record["summary"]
    read, lat, tp, ratios = s["read"], s["latency"], s["throughput"], s["ratios"]

    header = f"   {'one check inside a running task':<44}{'girder-worker':>14}{'plain Celery':>14}{'ours/plain':>12}"
    lines += [header, "   " + "-" * (len(header) - 3)]
    lines.append(
        f"   {'median per check (ns)':<44}{fmt(read['ours']['median_ns'], ',.0f'):>14}"
        f"{fmt(read['plain']['median_ns'], ',.0f'):>14}{fmt(ratios['read'], '.5f'):>12}"
    )
    lines.append(
        f"   {'  of which the bare loop (ns)':<44}{fmt(read['ours']['loop_median_ns'], ',.0f'):>14}"
        f"{fmt(read['plain']['loop_median_ns'], ',.0f'):>14}"
    )
    timed = {side: len(record["read_cost"][side]["per_read_ns"]) for side in SIDES}
    lines.append(
        f"   {'  checks timed':<44}{timed['ours'] * args.read_batch:>14,}{timed['plain'] * args.abort_batch:>14,}"
    )

    header = (
        f"   {f'cancel latency (ms, N={args.n} each)':<30}{'cancel()':>10}{'revoke()':>10}{'abort()':>10}"
        f"{'cancel/abort':>14}{'revoke/abort':>14}"
    )
    lines += ["", header, "   " + "-" * (len(header) - 3)]
    for label, key in (("p50", "p50"), ("p95", "p95"), ("max", "max")):
        lines.append(
            f"   {label:<30}{fmt(lat['cancel'][f'{key}_ms'], '.2f'):>10}{fmt(lat['revoke'][f'{key}_ms'], '.2f'):>10}"
            f"{fmt(lat['abort'][f'{key}_ms'], '.2f'):>10}{fmt(ratios[f'cancel_{key}'], '.3f'):>14}"
            f"{fmt(ratios[f'revoke_{key}'], '.3f'):>14}"
        )
    parts = [
        ("the client's call itself, p50", "call_p50_ms"),
        ("  p95", "call_p95_ms"),
        ("call to worker's listener, p50", "to_listener_p50_ms"),
        ("  p95", "to_listener_p95_ms"),
        ("listener to the task, p50", "to_task_p50_ms"),
        ("  p95", "to_task_p95_ms"),
    ]
    for label, key in parts:
        lines.append(
            f"   {label:<30}{fmt(lat['cancel'].get(key), '.2f'):>10}{fmt(lat['revoke'].get(key), '.2f'):>10}"
            f"{fmt(lat['abort'].get(key), '.2f'):>10}"
        )
    states = "; ".join(
        f"{m}() " + ", ".join(f"{k} {v}/{lat[m]['n']}" for k, v in sorted(lat[m]["states"].items())) for m in METHODS
    )
    lines.append(f"   final states: {states}")
    for method in ("cancel", "revoke"):
        trials = record.get("cancel", {}).get(method, [])
        if trials:
            lines.append(f"   slowest {method}() (ms): {_slowest(trials)}")

    label = f"throughput (tasks/s, {args.rounds}x M={args.m})"
    header = f"   {label:<44}{'girder-worker':>14}{'plain Celery':>14}{'ours/plain':>12}"
    lines += ["", header, "   " + "-" * (len(header) - 3)]
    span = s["throughput_paired_range"]
    lines.append(
        f"   {'median of the rounds':<44}{fmt(tp['ours']['median_per_s'], '.1f'):>14}"
        f"{fmt(tp['plain']['median_per_s'], '.1f'):>14}{fmt(ratios['throughput'], '.3f'):>12}"
        + (f"   paired range {span[0]:.3f}-{span[1]:.3f}" if span else "")
    )
    lines.append(
        f"   {'best round':<44}{fmt(tp['ours']['best_per_s'], '.1f'):>14}"
        f"{fmt(tp['plain']['best_per_s'], '.1f'):>14}{fmt(ratios['throughput_best'], '.3f'):>12}"
    )
    lines.append("")
    for goal in s["goals"]:
        verdict = "not measured" if goal["met"] is None else ("MET" if goal["met"] else "NOT MET")
        value = fmt(goal["value"], ".3f" if goal["unit"] == "" else ".1f" if goal["unit"] == "ns" else ".2f")
        lines.append(f"   goal: {goal['text']}: {value}{(' ' + goal['unit']) if goal['unit'] else ''} -> {verdict}")
    return "\n".join(lines)


def overview(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    header = (
        f"{'broker / pool':<22}{'check ns':>10}{'plain ns':>11}{'cancel p95':>12}{'revoke p95':>12}"
        f"{'abort p95':>11}{'max ours':>10}{'tput ratio':>12}{'goals':>8}"
    )
    title = "summary (latencies in ms; 'max ours' is the larger max of cancel() and revoke())"
    lines = [title, header, "-" * len(header)]
    for r in records:
        s = r["summary"]
        lat = s["latency"]
        maxes = [v for v in (lat["cancel"]["max_ms"], lat["revoke"]["max_ms"]) if v is not None]
        met = f"{sum(1 for g in s['goals'] if g['met'])}/{len(s['goals'])}"
        lines.append(
            f"{r['broker'] + ' / ' + r['pool']:<22}{fmt(s['read']['ours']['median_ns'], ',.0f'):>10}"
            f"{fmt(s['read']['plain']['median_ns'], ',.0f'):>11}{fmt(lat['cancel']['p95_ms'], '.2f'):>12}"
            f"{fmt(lat['revoke']['p95_ms'], '.2f'):>12}{fmt(lat['abort']['p95_ms'], '.2f'):>11}"
            f"{fmt(max(maxes) if maxes else None, '.2f'):>10}{fmt(s['ratios']['throughput'], '.3f'):>12}"
            f"{met:>8}"
        )
    return "\n".join(lines)


def preamble(args: argparse.Namespace, started: str) -> str:
    conc = f" -c {args.concurrency}"
    poll = embedded_poll_interval()
    return "\n".join(
        [
            f"cancellation: girder-worker vs plain Celery's AbortableTask, {started}; Python "
            f"{platform.python_version()}, celery {version('celery')}, kombu {version('kombu')}, "
            f"girder-worker-core {version('girder-worker-core')}, {os.cpu_count()} CPUs; code: {git_state()}, "
            f"sources {source_digest()}; load average at start {load_average()}",
            f"ours:  girder-worker {' '.join(COMMON_WORKER_OPTS)} -P <pool>[{conc}] -Q <queue> -I bench.gw_bench_tasks",
            f"plain: python -m celery -A bench.plain_app worker {' '.join(COMMON_WORKER_OPTS)} -P <pool>[{conc}]"
            " -Q <queue>",
            "       (the workers and their settings of bench/run.py; embedded: the same transport, folders and",
            f"        {poll}s polling, file:// results; rabbitmq: {RABBITMQ_URL} with results in {RABBITMQ_BACKEND};",
            f"        redis: {REDIS_BROKER_URL}, results too)",
            f"check: {args.read_rounds} rounds of one task timing batches of self.cancelled reads ({args.read_batches}"
            f" x {args.read_batch}) / of AbortableTask.is_aborted() calls ({args.abort_batches} x {args.abort_batch}),",
            "       the time per check of each batch; median over the batches (the bare loop's cost included)",
            "latency: the task loops on the check and writes time.time() when it sees the cancel; the client waits",
            f"       for the task's start marker and {args.settle * 1000:.0f} ms more, takes time.time() and calls "
            + "; ".join(f"{m}: {CALLS[m]}" for m in METHODS),
            f"       (interleaved trial by trial, after {args.cancel_warmup} untimed trials each; each run's final"
            " state awaited before the next trial)",
            "       girder-worker's worker notes when its listener delivers each cancel ("
            + ("on: 'call to worker's listener'" if args.trace else "off: --no-trace")
            + "; the note is written after the delivery)",
            f"throughput: bench/client.py's, {args.rounds} rounds of {args.m} add tasks, the sides alternating",
            "goals: check <= 1 us median; cancel()/revoke() p95 <= 15 ms (RabbitMQ, Redis), <= 100 ms (embedded);"
            " throughput ours/plain >= 0.95",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/cancel.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="embedded,rabbitmq,redis", help="comma-separated: embedded,rabbitmq,redis")
    p.add_argument("--pools", default="prefork,threads,solo", help="comma-separated: prefork,threads,solo")
    p.add_argument("--concurrency", "-c", type=int, default=2, help="prefork/threads concurrency (default 2)")
    p.add_argument("--n", type=int, default=60, help="timed cancel trials per method (default 60)")
    p.add_argument("--cancel-warmup", type=int, default=2, help="untimed cancel trials per method first (default 2)")
    p.add_argument("--settle", type=float, default=0.01, help="seconds between the start marker and the cancel")
    p.add_argument("--read-rounds", type=int, default=3, help="read-cost tasks per side (default 3)")
    p.add_argument("--read-batch", type=int, default=10_000, help="self.cancelled reads per batch (default 10000)")
    p.add_argument("--read-batches", type=int, default=20, help="batches per read-cost task (default 20)")
    p.add_argument("--abort-batch", type=int, default=20, help="is_aborted() calls per batch (default 20)")
    p.add_argument("--abort-batches", type=int, default=10, help="batches per is_aborted() task (default 10)")
    p.add_argument("--m", type=int, default=1000, help="tasks in one throughput round (default 1000)")
    p.add_argument("--rounds", type=int, default=5, help="throughput rounds per side (default 5)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up round trips per side (default 20)")
    p.add_argument("--phase-timeout", type=float, default=180.0, help="seconds one command may take")
    p.add_argument(
        "--no-trace", dest="trace", action="store_false", help="do not note when girder-worker's listener delivers"
    )
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/cancel-<timestamp>.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' logs and data directories")
    args = p.parse_args(argv)
    for name in ("n", "read_rounds", "read_batch", "read_batches", "abort_batch", "abort_batches", "m", "rounds",
                 "warmup", "concurrency"):  # fmt: skip
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.cancel_warmup < 0 or args.settle < 0:
        p.error("--cancel-warmup and --settle must not be negative")
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.pool_list = [x.strip() for x in args.pools.split(",") if x.strip()]
    for b in args.broker_list:
        if b not in BROKERS:
            p.error(f"unknown broker {b!r}; choose from {', '.join(BROKERS)}")
    for x in args.pool_list:
        if x not in POOLS:
            p.error(f"unknown pool {x!r}; choose from {', '.join(POOLS)}")
    return args


def _empty(broker: str, pool: str, error: str) -> dict[str, Any]:
    return {
        "broker": broker, "pool": pool, "error": error, "load_average": {"start": load_average()},
        "read_cost": {side: {"per_read_ns": [], "loop_ns": []} for side in SIDES},
        "cancel": {method: [] for method in METHODS}, "throughput": {side: [] for side in SIDES},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return drive(
        parse_args(argv),
        name="cancel",
        preamble=preamble,
        run_config=run_config,
        empty=_empty,
        summarize=summarize,
        table=table,
        goals_met=lambda records: [g["met"] for r in records for g in r["summary"]["goals"]],
        payload={"calls": CALLS},
        overview=overview,
    )


if __name__ == "__main__":
    sys.exit(main())

"""Fault injection: what becomes of tasks whose worker dies, girder-worker against plain Celery.

``hatch run bench:faults [options]`` (``--quick`` for fewer tasks, ``--help`` for
the rest). For each broker (embedded, RabbitMQ, Redis) it runs two scenarios on
four sides, each on a fresh queue, with workers started as ``bench/run.py``
starts them (its helpers, imported):

A. *pool process killed*: one prefork worker ``-c 2``; N ``record`` tasks of
   1.5 s; every ~1.2 s, K times, SIGKILL to the pool process of the newest run
   that has not ended;
B. *whole worker killed*: two solo workers (distinct node names) on one queue;
   N ``record`` tasks of 2 s; once runs are under way, SIGKILL to the whole
   process group of a worker that runs one, which is started again at once with
   the same node name. Per task that ran on it: the time from the kill to the
   task's final state.

Then it waits until every task has a final state, ``--wait`` seconds passed, or
nothing happened (no run started or ended, no state changed) for ``--quiet``
seconds; a task without a final state then is *lost*.

The sides: girder-worker with ``GIRDER_WORKER_DELIVERY=at-least-once`` (and
``GIRDER_WORKER_MAX_DELIVERIES=2``) and with ``at-most-once``, both with
``GIRDER_WORKER_LEASE_SECONDS=3`` (default 30) so that scenario B takes seconds;
plain Celery (``bench/plain_app.py``) with its defaults and with
``BENCH_PLAIN_ACKS_LATE=1`` (``task_acks_late`` + ``task_reject_on_worker_lost``).

The ``record`` task (``bench/recording.py``) appends ``start ID PID TIME`` and
``end ID PID TIME`` to a file, from which it counts executions, tasks that ran
more than once and tasks that ran twice at the same time (a run lasts from its
start to its end, or to the kill of its process). It prints a table per broker
and writes every figure to ``bench/results/faults-<timestamp>.json``. It talks
only to 127.0.0.1, deletes its queues, results and leases, and kills every
worker's process group at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/faults.py``
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BROKERS,
    OWN_WORKER_QUEUES,
    RABBITMQ_BACKEND,
    RABBITMQ_URL,
    REDIS_BROKER_URL,
    Worker,
    delete_queues,
    drive,
    git_state,
    load_average,
    log,
    side_env,
    source_digest,
    worker_cmd,
)

LEASE_SECONDS = 3
MAX_DELIVERIES = 2
# label: (bench/run.py's side, the worker's extra environment, a description).
SIDES: dict[str, tuple[str, dict[str, str], str]] = {
    "ours-alo": (
        "ours",
        {"GIRDER_WORKER_DELIVERY": "at-least-once", "GIRDER_WORKER_MAX_DELIVERIES": str(MAX_DELIVERIES)},
        f"girder-worker, at-least-once, max_deliveries {MAX_DELIVERIES}",
    ),
    "ours-amo": ("ours", {"GIRDER_WORKER_DELIVERY": "at-most-once"}, "girder-worker, at-most-once"),
    "plain": ("plain", {}, "plain Celery, defaults (acks early)"),
    "plain-late": (
        "plain",
        {"BENCH_PLAIN_ACKS_LATE": "1"},
        "plain Celery, task_acks_late + task_reject_on_worker_lost",
    ),
}
SCENARIOS = {
    "pool": "A. pool process killed (prefork -c 2)",
    "worker": "B. whole worker killed (2 x solo, restarted)",
}
TASK_NAMES = {"ours": "bench.gw_bench_tasks.record", "plain": "bench.plain_app.record"}
READY_STATES = {"SUCCESS", "FAILURE", "REVOKED"}
POLL_SECONDS = 0.1


# --- what the runs wrote -----------------------------------------------------


@dataclass
class Run:
    task_id: str
    pid: int
    start: float
    end: float | None = None


def read_runs(path: Path) -> list[Run]:
    """The runs the ``record`` task noted in ``path``, in the order they started."""
    runs: list[Run] = []
    open_runs: dict[tuple[str, int], Run] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue  # a line being written
            event, task_id, pid, at = parts[0], parts[1], int(parts[2]), float(parts[3])
            if event == "start":
                run = Run(task_id, pid, at)
                runs.append(run)
                open_runs[(task_id, pid)] = run
            elif event == "end" and (task_id, pid) in open_runs:
                open_runs.pop((task_id, pid)).end = at
    return runs


def in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except ProcessLookupError:
        return False


# --- the broker side: submitting and watching states -----------------------


def client_app(broker: str, data_dir: Path) -> Any:
    """A bare Celery app on the configuration's broker and result backend, to send
    tasks by name and read their states (both sides' workers use the same ones)."""
    from celery import Celery

    app = Celery("faults", set_as_current=False)
    urls = BROKERS[broker]
    if urls is None:
        from girder_worker._config import embedded_settings

        app.conf.update(embedded_settings(data_dir))
    else:
        app.conf.update(broker_url=urls[0], result_backend=urls[1])
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"]
    )
    return app


class StateWatcher(threading.Thread):
    """Polls the states of the submitted tasks; notes when each became final."""

    def __init__(self, app: Any, task_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.task_ids = task_ids
        self.states: dict[str, str] = dict.fromkeys(task_ids, "PENDING")
        self.final_at: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.last_change = time.time()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.poll()
            self._halt.wait(POLL_SECONDS)

    def poll(self) -> None:
        for task_id in self.task_ids:
            if task_id in self.final_at:
                continue
            try:
                meta = self.app.backend.get_task_meta(task_id)
            except Exception as exc:  # a result being written, an exception type unknown here
                log(f"could not read the state of {task_id}: {exc}")
                continue
            state = str(meta.get("status", "PENDING"))
            if state != self.states[task_id]:
                self.states[task_id] = state
                self.last_change = time.time()
            if state in READY_STATES:
                self.final_at[task_id] = time.time()
                if state != "SUCCESS":
                    result = meta.get("result")
                    # Celery's WorkerLostError names the pool's job number: one line for all.
                    text = re.sub(r" Job: \d+\.$", "", f"{type(result).__name__}: {result}")
                    self.errors[task_id] = text[:200]

    def all_final(self) -> bool:
        return len(self.final_at) == len(self.task_ids)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.poll()  # the last word


def forget(broker: str, app: Any, task_ids: list[str]) -> None:
    """Delete the tasks' results and girder-worker's leases of them from Redis."""
    urls = BROKERS[broker]
    if urls is None:
        return  # the data directory goes with the run's work directory
    import redis

    client = redis.Redis.from_url(urls[1])
    try:
        for task_id in task_ids:
            client.delete(f"celery-task-meta-{task_id}", f"girder_worker:lease:{task_id}")
            client.zrem("girder_worker:running", task_id)
    finally:
        client.close()


# --- one scenario on one side --------------------------------------------


@dataclass
class Trial:
    """What one scenario on one side needs and what it saw."""

    broker: str
    scenario: str
    label: str
    args: argparse.Namespace
    folder: Path
    queue: str
    nodes: list[str]
    killed: dict[int, float] = field(default_factory=dict)  # pid: when
    kill_at: float | None = None
    victims: list[str] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def runs_path(self) -> Path:
        return self.folder / "runs.txt"

    def env(self) -> dict[str, str]:
        side, extra, _ = SIDES[self.label]
        env = side_env(side, self.broker, self.folder / "data")
        env.update(extra)
        if side == "ours":
            env["GIRDER_WORKER_LEASE_SECONDS"] = str(LEASE_SECONDS)
        return env

    def start_worker(self, node: str, pool: str, name: str) -> Worker:
        side = SIDES[self.label][0]
        worker = Worker(worker_cmd(side, pool, 2, self.queue, node), self.env(), self.folder / f"{name}.log")
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def open_runs(self) -> list[Run]:
        return [r for r in read_runs(self.runs_path) if r.end is None and r.pid not in self.killed]


def kill_pool_processes(trial: Trial, worker: Worker, stop: threading.Event) -> None:
    """Scenario A's killer: SIGKILL to the pool process of the newest unfinished run,
    every ``--kill-every`` seconds, ``--kills`` times."""
    while len(trial.killed) < trial.args.kills and not stop.wait(trial.args.kill_every):
        while not stop.is_set():
            runs = [r for r in trial.open_runs() if r.pid != worker.proc.pid and in_group(r.pid, worker.proc.pid)]
            if runs:
                pid = runs[-1].pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    trial.killed[pid] = time.time()
                break
            if worker.proc.poll() is not None:
                return
            stop.wait(0.05)


def scenario_pool(trial: Trial, app: Any, watcher_box: list[StateWatcher]) -> None:
    args = trial.args
    worker = trial.start_worker(trial.nodes[0], "prefork", "worker")
    ids = submit(trial, app, args.pool_tasks, args.pool_seconds)
    watcher_box.append(start_watcher(app, ids))
    stop = threading.Event()
    killer = threading.Thread(target=kill_pool_processes, args=(trial, worker, stop), daemon=True)
    killer.start()
    try:
        wait_for_final(trial, watcher_box[0], busy=killer.is_alive)
    finally:
        stop.set()
        killer.join(timeout=10)


def scenario_worker(trial: Trial, app: Any, watcher_box: list[StateWatcher]) -> None:
    args = trial.args
    workers = [trial.start_worker(node, "solo", f"worker{i}") for i, node in enumerate(trial.nodes)]
    ids = submit(trial, app, args.worker_tasks, args.worker_seconds)
    watcher = start_watcher(app, ids)
    watcher_box.append(watcher)
    # Once runs are under way on both workers (or on one, after a while), kill the
    # worker of the newest run.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = trial.open_runs()
        if len(runs) >= len(workers) or (runs and time.monotonic() > deadline - 15):
            break
        time.sleep(0.05)
    time.sleep(args.worker_seconds / 4)  # well into the runs
    runs = trial.open_runs()
    owner = {r.task_id: w for r in runs for w in workers if in_group(r.pid, w.proc.pid)}
    if not runs or runs[-1].task_id not in owner:
        trial.notes.append("no run under way to kill its worker")
        wait_for_final(trial, watcher)
        return
    victim = owner[runs[-1].task_id]
    index = workers.index(victim)
    trial.victims = [task_id for task_id, w in owner.items() if w is victim]
    trial.kill_at = time.time()
    os.killpg(victim.proc.pid, signal.SIGKILL)
    for r in runs:
        if r.task_id in trial.victims:
            trial.killed[r.pid] = trial.kill_at
    victim.stop(grace=0)  # reaps it
    log(f"killed worker {trial.nodes[index]} running {len(trial.victims)} task(s); starting it again")
    trial.start_worker(trial.nodes[index], "solo", f"worker{index}-restarted")
    wait_for_final(trial, watcher)


def submit(trial: Trial, app: Any, count: int, seconds: float) -> list[str]:
    name = TASK_NAMES[SIDES[trial.label][0]]
    path = str(trial.runs_path)
    return [app.send_task(name, (path, seconds), queue=trial.queue).id for _ in range(count)]


def start_watcher(app: Any, ids: list[str]) -> StateWatcher:
    watcher = StateWatcher(app, ids)
    watcher.start()
    return watcher


def wait_for_final(trial: Trial, watcher: StateWatcher, busy: Any = lambda: False) -> None:
    """Until every task has a final state, ``--wait`` seconds passed, or nothing
    happened for ``--quiet`` seconds while no run is under way."""
    args = trial.args
    t0 = time.monotonic()
    while not watcher.all_final() and time.monotonic() - t0 < args.wait:
        runs = read_runs(trial.runs_path)
        moments = [watcher.last_change, *trial.killed.values(), *(r.end or r.start for r in runs)]
        quiet = time.time() - max(moments)
        if quiet > args.quiet and not busy() and not trial.open_runs():
            trial.notes.append(f"nothing happened for {args.quiet:.0f}s")
            return
        time.sleep(0.2)
    if not watcher.all_final():
        trial.notes.append(f"wait of {args.wait:.0f}s over")


def run_trial(trial: Trial) -> dict[str, Any]:
    """One scenario on one side: its counts, on a fresh queue (and data directory)."""
    trial.folder.mkdir(parents=True)
    (trial.folder / "data").mkdir()
    app = client_app(trial.broker, trial.folder / "data")
    box: list[StateWatcher] = []
    t0 = time.monotonic()
    try:
        (scenario_pool if trial.scenario == "pool" else scenario_worker)(trial, app, box)
    finally:
        for worker in trial.workers:
            worker.stop(grace=0)  # its runs are over (or lost): nothing to wait for
        if box:
            box[0].stop()
        try:
            ours = SIDES[trial.label][0] == "ours"
            own = [q.format(node=n) for n in trial.nodes for q in OWN_WORKER_QUEUES] if ours else []
            if trial.broker == "redis":  # RabbitMQ drops these with the connection
                own += [f"{n}.celery.pidbox" for n in trial.nodes]
            delete_queues(trial.broker, [trial.queue], own)
            forget(trial.broker, app, box[0].task_ids if box else [])
        except Exception as exc:  # cleanup must not lose the figures
            log(f"could not clean up on {trial.broker}: {exc}")
        with contextlib.suppress(Exception):
            app.close()
    return counts(trial, box[0] if box else None, time.monotonic() - t0)


def counts(trial: Trial, watcher: StateWatcher | None, seconds: float) -> dict[str, Any]:
    runs = read_runs(trial.runs_path)
    ids = watcher.task_ids if watcher else []
    by_id: dict[str, list[Run]] = {}
    for r in runs:
        by_id.setdefault(r.task_id, []).append(r)

    def until(r: Run) -> float:
        return r.end if r.end is not None else trial.killed.get(r.pid, float("inf"))

    concurrent = [
        task_id
        for task_id, rs in by_id.items()
        if any(a.start < until(b) and b.start < until(a) for i, a in enumerate(rs) for b in rs[i + 1 :])
    ]
    states = Counter(watcher.states.values()) if watcher else Counter()
    final = Counter({s: n for s, n in states.items() if s in READY_STATES})
    to_final = (
        [watcher.final_at[t] - trial.kill_at for t in trial.victims if t in watcher.final_at]
        if watcher and trial.kill_at
        else []
    )
    return {
        "submitted": len(ids),
        "executions": len(runs),
        "ran_more_than_once": sum(1 for rs in by_id.values() if len(rs) > 1),
        "ran_concurrently": len(concurrent),
        "success": final.get("SUCCESS", 0),
        "failure": final.get("FAILURE", 0),
        "other_final": sum(n for s, n in final.items() if s not in ("SUCCESS", "FAILURE")),
        "lost": len(ids) - sum(final.values()),
        "states": dict(states),
        "kills": len(trial.killed) if trial.scenario == "pool" else (1 if trial.kill_at else 0),
        "victims": len(trial.victims),
        "kill_to_final_s": to_final,
        "kill_to_final_median_s": statistics.median(to_final) if to_final else None,
        "kill_to_final_max_s": max(to_final) if to_final else None,
        "failures": sorted(set(watcher.errors.values())) if watcher else [],
        "notes": trial.notes,
        "runs": [[r.task_id, r.pid, r.start, r.end] for r in runs],
        "killed_pids": trial.killed,
        "seconds": seconds,
        "queue": trial.queue,
        "nodes": trial.nodes,
    }


def run_config(
    broker: str, scenario: str, index: int, args: argparse.Namespace, run_id: str, work: Path
) -> dict[str, Any]:
    """One broker and scenario, every side in turn (``drive`` calls it per "pool")."""
    record: dict[str, Any] = {"broker": broker, "pool": scenario, "sides": {}}
    for label in args.side_list:
        tag = f"{broker}-{scenario}-{label}"
        log(f"{broker} / {SCENARIOS[scenario]} / {label}")
        count = 1 if scenario == "pool" else 2
        trial = Trial(
            broker, scenario, label, args, work / tag, f"gwfaults-{run_id}-{tag}",
            [f"gwfaults-{label}-{scenario}{i}-{run_id}@127.0.0.1" for i in range(count)],
        )  # fmt: skip
        try:
            record["sides"][label] = run_trial(trial)
        except Exception as exc:
            log(f"{tag} failed: {exc}")
            record["sides"][label] = {"error": str(exc).splitlines()[0] if str(exc) else repr(exc)}
    return record


# --- output ------------------------------------------------------------------


def table(record: dict[str, Any], args: argparse.Namespace) -> str:
    scenario = record["pool"]
    lines = [f"== {record['broker']} / {SCENARIOS[scenario]} =="]
    if record.get("error"):
        lines.append(f"   ERROR: {record['error'].splitlines()[0]}")
    header = (
        f"   {'side':<11}{'sub':>4}{'kills':>6}{'exec':>5}{'>1x':>4}{'conc':>5}"
        f"{'SUCC':>5}{'FAIL':>5}{'oth':>4}{'lost':>5}{'  kill->final s (n, med/max)':<28}  ended by"
    )
    lines += [header, "   " + "-" * (len(header) - 3)]
    for label, c in record["sides"].items():
        if "error" in c:
            lines.append(f"   {label:<11}ERROR: {c['error']}")
            continue
        timing = ""
        if scenario == "worker" and c["victims"]:
            med, top = c["kill_to_final_median_s"], c["kill_to_final_max_s"]
            reached = len(c["kill_to_final_s"])
            timing = f"{reached}/{c['victims']}, " + (f"{med:.1f}/{top:.1f}" if med is not None else "never")
        ended = "; ".join(c["notes"]) or "all final"
        lines.append(
            f"   {label:<11}{c['submitted']:>4}{c['kills']:>6}{c['executions']:>5}{c['ran_more_than_once']:>4}"
            f"{c['ran_concurrently']:>5}{c['success']:>5}{c['failure']:>5}{c['other_final']:>4}{c['lost']:>5}"
            f"  {timing:<26}  {ended}"
        )
    reasons = sorted({f"{label}: {f}" for label, c in record["sides"].items() for f in c.get("failures", [])})
    for reason in reasons[:8]:
        lines.append(f"   failure {reason}")
    return "\n".join(lines)


LEGEND = """\
legend: sub = tasks submitted; kills = SIGKILLs sent (A: to pool processes; B: to one worker's process group);
  exec = runs started (start lines); >1x = tasks that started more than once; conc = tasks with two runs at the
  same time (a run lasts from its start to its end or to the kill of its process); SUCC/FAIL/oth = final states
  SUCCESS, FAILURE, other (REVOKED); lost = no final state when the wait ended (PENDING or STARTED for good);
  kill->final (B only) = of the tasks running on the killed worker, how many reached a final state, and the
  seconds from the kill to it (median/max); ended by = why the wait ended."""


def overview(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    return LEGEND


def preamble(args: argparse.Namespace, started: str) -> str:
    sides = "\n".join(f"   {label:<11}{desc}" for label, (_, _, desc) in SIDES.items() if label in args.side_list)
    return "\n".join(
        [
            f"fault injection, girder-worker vs plain Celery, {started}; Python {platform.python_version()}, "
            f"celery {version('celery')}, kombu {version('kombu')}, "
            f"girder-worker-core {version('girder-worker-core')}, {os.cpu_count()} CPUs; "
            f"code: {git_state()}, sources {source_digest()}; load average at start {load_average()}",
            f"A: prefork -c 2, {args.pool_tasks} x record({args.pool_seconds} s), SIGKILL to the pool process of the "
            f"newest unfinished run every {args.kill_every} s, {args.kills} times",
            f"B: 2 solo workers, {args.worker_tasks} x record({args.worker_seconds} s), SIGKILL to the process group "
            "of a worker running a task once runs are under way; it is started again at once (same node name)",
            f"wait: until all final, {args.wait:.0f} s, or {args.quiet:.0f} s with no run under way and nothing new",
            f"girder-worker: GIRDER_WORKER_LEASE_SECONDS={LEASE_SECONDS} (default 30; a lost worker's tasks are taken "
            f"over after at most 1.5 x that)",
            f"rabbitmq: {RABBITMQ_URL} with results in {RABBITMQ_BACKEND}; redis: {REDIS_BROKER_URL} (results too); "
            "embedded: a fresh data directory per side and scenario",
            "sides:",
            sides,
        ]
    )


def goals_met(records: list[dict[str, Any]]) -> list[bool | None]:
    met: list[bool | None] = []
    for record in records:
        for label in ("ours-alo", "ours-amo"):
            c = record["sides"].get(label)
            if c is None or "error" in c:
                met += [None, None]
                continue
            met.append(c["ran_concurrently"] == 0 and c["lost"] == 0)
            if label == "ours-amo":
                met.append(c["ran_more_than_once"] == 0)
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/faults.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="embedded,rabbitmq,redis", help="comma-separated: embedded,rabbitmq,redis")
    p.add_argument("--scenarios", default="pool,worker", help="comma-separated: pool (A), worker (B)")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated: {','.join(SIDES)}")
    p.add_argument("--pool-tasks", type=int, help="tasks in scenario A (default 12; quick 6)")
    p.add_argument("--pool-seconds", type=float, default=1.5, help="how long a task of scenario A runs")
    p.add_argument("--kills", type=int, help="pool processes killed in scenario A (default 4; quick 3)")
    p.add_argument("--kill-every", type=float, default=1.2, help="seconds between kills in scenario A")
    p.add_argument("--worker-tasks", type=int, help="tasks in scenario B (default 6; quick 4)")
    p.add_argument("--worker-seconds", type=float, default=2.0, help="how long a task of scenario B runs")
    p.add_argument("--wait", type=float, default=90.0, help="the longest wait for final states (s)")
    p.add_argument("--quiet", type=float, help="end the wait after this long with nothing new (default 15; quick 10)")
    p.add_argument("--quick", action="store_true", help="fewer tasks")
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/faults-<timestamp>.json")
    p.add_argument("--keep-logs", action="store_true", help="keep the workers' logs and data directories")
    args = p.parse_args(argv)
    defaults = {"pool_tasks": (12, 6), "kills": (4, 3), "worker_tasks": (6, 4), "quiet": (15.0, 10.0)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.quiet <= 1.5 * LEASE_SECONDS:
        p.error(f"--quiet must exceed {1.5 * LEASE_SECONDS} s, the longest a lease takeover may take")
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.side_list = [s.strip() for s in args.sides.split(",") if s.strip()]
    # drive() runs every broker x "pool": here the pools are the scenarios.
    args.pool_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for values, known, what in ((args.broker_list, BROKERS, "broker"), (args.side_list, SIDES, "side"),
                                (args.pool_list, SCENARIOS, "scenario")):  # fmt: skip
        for value in values:
            if value not in known:
                p.error(f"unknown {what} {value!r}; choose from {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    return drive(
        parse_args(argv),
        name="faults",
        preamble=preamble,
        run_config=run_config,
        empty=lambda broker, scenario, error: {"broker": broker, "pool": scenario, "error": error, "sides": {}},
        summarize=lambda record: {},
        table=table,
        goals_met=goals_met,
        payload={
            "lease_seconds": LEASE_SECONDS,
            "sides": {label: {"side": s, "env": env, "what": d} for label, (s, env, d) in SIDES.items()},
            "goals": [
                "ours (both policies): no task ran twice at the same time, and none was lost",
                "ours at-most-once: no task started twice",
            ],
        },
        overview=overview,
    )


if __name__ == "__main__":
    sys.exit(main())

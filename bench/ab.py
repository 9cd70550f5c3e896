"""girder-worker at a base commit against the working tree: paired rounds, one run.

``hatch run bench:ab --base REF [options]`` (``--help`` for the rest). A change
of a few percent per task is smaller than what this machine's load moves a
figure from one run to the next (latency medians spread by 10-30 % here), so
``bench/run.py``'s ratios against plain Celery, taken in two runs, cannot show
it. Here both versions run side by side in the same run:

* **base**: the ``packages/`` of ``REF`` (``git archive``), put before the
  installed packages on ``PYTHONPATH``: its worker and its client import that
  code (checked before anything is measured);
* **head**: the working tree, as installed.

For each broker and pool, both workers are up with one client each
(``bench.client``), and the two take turns round by round (which goes first
alternates), so a change in the machine's load hits both alike. Per round it
takes the median latency of N sequential ``add(1, 2)`` round trips and the
throughput of M tasks; it prints the medians over the rounds and the
head/base ratio (the median of the per-round ratios, with their range).

``--base HEAD`` with a clean working tree compares the code with itself: what
that prints is the noise floor of the method on this machine (a ratio of
1.000 +- a few percent).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as ``python bench/ab.py``
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BROKERS,
    OWN_WORKER_QUEUES,
    PORTS,
    ClientProc,
    compile_bytecode,
    delete_queues,
    embedded_poll_interval,
    log,
    reachable,
    running,
    side_env,
    worker_cmd,
)

SIDES = ("base", "head")
#: The packages whose sources the base side takes from ``REF``.
PACKAGES = ("girder-worker-utils", "girder-worker-core", "gwexample")


def export_base(ref: str, into: Path) -> list[str]:
    """Write ``ref``'s ``packages/`` under ``into``; the source folders to import it from."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "packages"], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"bench/ab.py: git archive {ref} failed: {archive.stderr.decode(errors='replace').strip()}")
    tar_path = into / "base.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    folders = [
        str(into / "packages" / name / "src") for name in PACKAGES if (into / "packages" / name / "src").is_dir()
    ]
    if not folders:
        raise SystemExit(f"bench/ab.py: {ref} has no packages/*/src")
    return folders


def side_environment(side: str, broker: str, data_dir: Path, base_paths: list[str]) -> dict[str, str]:
    env = side_env("ours", broker, data_dir)
    if side == "base":
        env["PYTHONPATH"] = os.pathsep.join([*base_paths, env["PYTHONPATH"]])
    return env


def imported_from(env: dict[str, str]) -> str:
    """Where a process with ``env`` imports girder_worker and girder_worker_utils from."""
    code = "import girder_worker, girder_worker_utils; print(girder_worker.__file__, girder_worker_utils.__file__)"
    found = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise SystemExit(f"bench/ab.py: girder_worker does not import:\n{found.stderr}")
    return found.stdout.strip()


def run_config(broker: str, pool: str, index: int, args: argparse.Namespace, work: Path,
               base_paths: list[str]) -> dict[str, Any]:  # fmt: skip
    tag = f"{broker}-{pool}"
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    queues = {side: f"gwab-{run_id}-{tag}-{side}" for side in SIDES}
    nodes = {side: f"gwab-{side}-{tag}-{run_id}@{socket.gethostname()}" for side in SIDES}
    poll = embedded_poll_interval() if BROKERS[broker] is None else 0.0
    rounds: dict[str, dict[str, list[float]]] = {side: {"latency": [], "throughput": []} for side in SIDES}

    def order(i: int) -> tuple[str, ...]:
        return SIDES if (i + index) % 2 == 0 else SIDES[::-1]

    try:
        with contextlib.ExitStack() as stack:
            clients: dict[str, ClientProc] = {}
            for side in SIDES:
                data_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-{side}-", dir=work))
                env = side_environment(side, broker, data_dir, base_paths)
                cmd = worker_cmd("ours", pool, args.concurrency, queues[side], nodes[side])
                stack.enter_context(running(cmd, env, data_dir / "worker.log"))
                clients[side] = ClientProc("ours", env, queues[side], poll, args, data_dir / "client.log")
                stack.callback(clients[side].close)
            for side in SIDES:
                clients[side].ask("warmup", count=args.warmup)
            log(f"{tag}: {args.rounds} rounds of {args.n} round trips and {args.m} tasks")
            for i in range(args.rounds):
                for side in order(i):
                    samples = clients[side].ask("latency", count=args.n)["latency_s"]
                    rounds[side]["latency"].append(statistics.median(samples))
                for side in order(i + 1):
                    reply = clients[side].ask("throughput", count=args.m)
                    rounds[side]["throughput"].append(reply["tasks"] / reply["seconds"])
    finally:
        try:
            own = [q.format(node=nodes[side]) for side in SIDES for q in OWN_WORKER_QUEUES]
            delete_queues(broker, list(queues.values()), own)
        except Exception as exc:  # cleanup must not lose the figures
            log(f"could not clean up on {broker}: {exc}")
    return {"broker": broker, "pool": pool, "rounds": rounds}


def paired(base: list[float], head: list[float]) -> tuple[float, float, float]:
    """The median of the per-round head/base ratios, and their range."""
    ratios = [h / b for b, h in zip(base, head, strict=True) if b]
    return statistics.median(ratios), min(ratios), max(ratios)


def table(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"{'broker / pool':<22} {'metric':<20} {'base':>10} {'head':>10} {'head/base':>10}   paired range",
        "-" * 90,
    ]
    for record in records:
        name = f"{record['broker']} / {record['pool']}"
        if "error" in record:
            lines.append(f"{name:<22} failed: {record['error']}")
            continue
        rounds = record["rounds"]
        for metric, unit, scale in (("latency", "median (ms)", 1e3), ("throughput", "tasks/s", 1.0)):
            base, head = rounds["base"][metric], rounds["head"][metric]
            middle, low, high = paired(base, head)
            lines.append(
                f"{name:<22} {metric + ' ' + unit:<20} {statistics.median(base) * scale:>10.2f} "
                f"{statistics.median(head) * scale:>10.2f} {middle:>10.3f}   {low:.3f}-{high:.3f}"
            )
            name = ""
    lines.append(
        f"latency: lower is better (head/base < 1: head is faster); throughput: higher is better. "
        f"{args.rounds} paired rounds of {args.n} round trips and {args.m} tasks."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/ab.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the git commit (or branch, tag) to compare the working tree with")
    p.add_argument("--brokers", default="redis", help="comma-separated: embedded,rabbitmq,redis (default redis)")
    p.add_argument("--pools", default="prefork,solo", help="comma-separated: prefork,solo,threads")
    p.add_argument("--concurrency", "-c", type=int, default=2, help="prefork/threads concurrency (default 2)")
    p.add_argument("--rounds", type=int, default=10, help="paired rounds (default 10)")
    p.add_argument("--n", type=int, default=200, help="sequential round trips per round (default 200)")
    p.add_argument("--m", type=int, default=500, help="tasks per throughput round (default 500)")
    p.add_argument("--warmup", type=int, default=50, help="warm-up round trips per side (default 50)")
    p.add_argument("--phase-timeout", type=float, default=180.0, help="seconds one phase may take")
    args = p.parse_args(argv)
    for name in ("rounds", "n", "m", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.pool_list = [x.strip() for x in args.pools.split(",") if x.strip()]
    for b in args.broker_list:
        if b not in BROKERS:
            p.error(f"unknown broker {b!r}; choose from {', '.join(BROKERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    compiled = compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="gwab-"))
    try:
        return _compare(args, compiled, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compare(args: argparse.Namespace, compiled: str, work: Path) -> int:
    base_paths = export_base(args.base, work)
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=work))
    print(f"base: {args.base} ({imported_from(side_environment('base', 'redis', probe, base_paths))})")
    print(f"head: the working tree ({imported_from(side_environment('head', 'redis', probe, base_paths))})")
    print(compiled, flush=True)
    records: list[dict[str, Any]] = []
    index = 0
    for broker in args.broker_list:
        missing = [port for port in PORTS.get(broker, []) if not reachable(port)]
        for pool in args.pool_list:
            if missing:
                records.append({"broker": broker, "pool": pool, "error": f"nothing listens on port(s) {missing}"})
                continue
            log(f"{broker} / {pool}")
            try:
                records.append(run_config(broker, pool, index, args, work, base_paths))
            except Exception as exc:
                log(f"{broker} / {pool} failed: {exc}")
                records.append({"broker": broker, "pool": pool, "error": str(exc)})
            index += 1
    print("\n" + table(records, args), flush=True)
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The embedded broker with a backlog: what publishing and taking a message cost.

A site's first batch of jobs (a folder of slides, say) lands on the embedded broker
all at once; the worker then drains the backlog. This publishes ``--n`` small
messages to one queue, then takes and acknowledges every one with one consumer, on
girder-worker's embedded transport and on kombu's own ``filesystem://`` transport
(what a plain Celery site on one machine would use), in the same run, each in a
fresh folder; it prints milliseconds per message, the CPU time behind them, and
ours/kombu ratios.

    hatch run bench:backlog [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _connection(kind: str, folder: Path) -> Any:
    from kombu import Connection

    if kind == "ours":
        from girder_worker._config import embedded_settings

        settings = embedded_settings(folder)
        return Connection(
            settings["broker_url"],
            transport=settings["broker_transport"],
            transport_options=settings["broker_transport_options"],
        )
    queue_folder, control_folder = folder / "queue", folder / "control"
    queue_folder.mkdir(parents=True)
    control_folder.mkdir()
    # kombu's exchange tables go to ./control unless told otherwise: into the round's folder.
    options = {
        "data_folder_in": str(queue_folder),
        "data_folder_out": str(queue_folder),
        "control_folder": str(control_folder),
    }
    return Connection("filesystem://", transport_options=options)


def one_round(kind: str, n: int) -> dict[str, float]:
    """Publish ``n`` messages, then take them all: ms and CPU ms per message of each half."""
    from kombu import Exchange, Queue

    # A name of its own per round: kombu's filesystem transport keeps the bindings a
    # process declared for the whole process, and each round has a new folder.
    name = f"backlog-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with tempfile.TemporaryDirectory(prefix=f"gw-backlog-{kind}-") as folder, _connection(kind, Path(folder)) as conn:
        producer = conn.Producer(serializer="json")
        producer.publish({"n": -1}, exchange=queue.exchange, routing_key=name, declare=[queue])
        simple = conn.SimpleQueue(queue)
        simple.get(timeout=5).ack()  # declared, bound and warm on both sides
        figures: dict[str, float] = {}
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            producer.publish({"n": i}, exchange=queue.exchange, routing_key=name)
        figures["publish_ms"] = (time.perf_counter() - started) / n * 1e3
        figures["publish_cpu_ms"] = (time.process_time() - cpu) / n * 1e3
        started, cpu = time.perf_counter(), time.process_time()
        taken = 0
        for _ in range(n):
            simple.get(timeout=5).ack()
            taken += 1
        figures["take_ms"] = (time.perf_counter() - started) / n * 1e3
        figures["take_cpu_ms"] = (time.process_time() - cpu) / n * 1e3
        simple.close()
        if taken != n:
            raise RuntimeError(f"{kind}: took {taken} of {n} messages")
        return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/embedded_backlog.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="messages in the backlog (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per side, the sides alternating (default 3)")
    args = p.parse_args(argv)
    rounds: dict[str, list[dict[str, float]]] = {"ours": [], "kombu": []}
    for index in range(args.rounds):
        for kind in ("ours", "kombu") if index % 2 == 0 else ("kombu", "ours"):
            rounds[kind].append(one_round(kind, args.n))
    print(
        f"embedded broker with a backlog of {args.n} messages, {args.rounds} rounds per side (median); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"   {'':34}{'ours':>10}{'kombu fs':>10}{'ours/kombu':>12}")
    for key, label in (
        ("publish_ms", "publish (ms per message)"),
        ("publish_cpu_ms", "publish CPU (ms per message)"),
        ("take_ms", "take and ack (ms per message)"),
        ("take_cpu_ms", "take and ack CPU (ms per message)"),
    ):
        ours = statistics.median(r[key] for r in rounds["ours"])
        kombu = statistics.median(r[key] for r in rounds["kombu"])
        print(f"   {label:34}{ours:10.3f}{kombu:10.3f}{ours / kombu:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

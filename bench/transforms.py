"""Transforms and the original's wire format: what they cost per task.

1. Round trip of a trivial task (``bench.gw_bench_tasks.add``) with one transform
   argument (``Const(1)``, written in the original's jsonpickle shape and restored by
   the worker's allow-list) against the same task with a plain argument, on one
   girder-worker, interleaved; goal: at most 1.05x.
2. Decoding a message body in the original's shape (a GirderFileId with its whole
   GirderClient, as an original Girder server publishes it) against a plain JSON body
   of the same size, in this process: microseconds each.

    hatch run bench:transforms [--broker redis|rabbitmq|embedded] [--n 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import Worker, delete_queues, side_env, worker_cmd  # noqa: E402


def decode_costs(repeat: int = 2000) -> tuple[float, float, int]:
    """(original-shaped, plain) decode microseconds, and the body size in bytes."""
    from girder_client import GirderClient

    from girder_worker.broker._wire_format import dumps, loads
    from girder_worker_utils.transforms.girder_io import GirderFileId

    gc = GirderClient(apiUrl="http://girder.example/api/v1")
    gc.token = "t" * 64
    original = dumps(((GirderFileId("5f0c" * 6, gc=gc),), {}, {"callbacks": None}))
    padding = len(original) - len(json.dumps([["x"], {}, {"callbacks": None}]))
    plain = json.dumps([["x" * padding], {}, {"callbacks": None}])
    encoded_original, encoded_plain = original.encode(), plain.encode()
    t_original = min(timeit.repeat(lambda: loads(encoded_original), number=repeat, repeat=5)) / repeat
    t_plain = min(timeit.repeat(lambda: loads(encoded_plain), number=repeat, repeat=5)) / repeat
    return t_original * 1e6, t_plain * 1e6, len(encoded_original)


def round_trips(broker: str, n: int) -> tuple[float, float]:
    """Median round trip (ms) of add(Const(1), 2) and of add(1, 2)."""
    from bench.gw_bench_tasks import Const
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    queue = f"bench-transforms-{uuid.uuid4().hex[:8]}"
    node = f"{queue}@%h"
    with tempfile.TemporaryDirectory() as tmp:
        env = side_env("ours", broker, Path(tmp))
        worker = Worker(worker_cmd("ours", "solo", 1, queue, node), env, Path(tmp) / "worker.log")
        try:
            worker.wait_ready()
            app = create_app(read_config({k: v for k, v in env.items() if k.startswith("GIRDER_WORKER_")}))
            with_t: list[float] = []
            without: list[float] = []
            for i in range(n + 20):
                for args, into in (((Const(1), 2), with_t), ((1, 2), without)):
                    start = time.perf_counter()
                    assert app.send_task("bench.gw_bench_tasks.add", args=args, queue=queue).get(timeout=30) == 3
                    if i >= 20:  # warm-up
                        into.append(time.perf_counter() - start)
            app.close()
        finally:
            worker.stop()
            delete_queues(broker, [queue], [])
    return statistics.median(with_t) * 1e3, statistics.median(without) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default="redis", choices=("redis", "rabbitmq", "embedded"))
    parser.add_argument("--n", type=int, default=400, help="round trips of each kind")
    args = parser.parse_args(argv)

    original_us, plain_us, size = decode_costs()
    print(f"decode, {size}-byte body: original shape {original_us:.1f} us, plain JSON {plain_us:.1f} us, "
          f"ratio {original_us / plain_us:.2f}")  # fmt: skip
    with_ms, without_ms = round_trips(args.broker, args.n)
    ratio = with_ms / without_ms
    verdict = "met" if ratio <= 1.05 else "NOT met"
    print(f"round trip on {args.broker}, solo: one transform argument {with_ms:.2f} ms, plain {without_ms:.2f} ms, "
          f"ratio {ratio:.3f} (goal <= 1.05: {verdict})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

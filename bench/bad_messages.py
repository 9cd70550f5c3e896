"""What the bad-message checks cost a good message, on the worker and on the client.

``python bench/bad_messages.py`` (from the repository root, in the test environment).
It prints, best of five rounds:

1. the worker's checks of one message (headers, size, body shape, arguments) and the
   argument check alone, with the task's signature cached; the first reading of a
   signature, which happens once per task;
2. publishing one task message through kombu's producer and through girder-worker's
   size-checking producer, on kombu's in-memory transport (no broker, so the
   producer's own work is all that is timed), for a small and a 100 kB argument.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import kombu
from celery import Celery

from girder_worker.broker._message_checks import (
    LimitedProducer,
    Signature,
    check_arguments,
    check_body,
    check_headers,
    check_size,
)

app = Celery(set_as_current=False)


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="bench.options", bind=True)
def options(self: Any, a: int, b: int = 1, *, c: Any = None, **rest: Any) -> None:
    pass


def ns_per_call(fn: Callable[[], object], n: int, after_round: Callable[[], object] = lambda: None) -> float:
    """The best of five rounds of ``n`` calls, in nanoseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n * 1e9)
        after_round()
    return min(rounds)


def worker_checks() -> None:
    task = app.tasks["bench.add"]  # the task itself, as the worker has it (``add`` is a proxy)
    with_options_task = app.tasks["bench.options"]
    payload = [[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    headers = {"task": "bench.add", "id": "0f3c2a4e-0000-4000-8000-000000000000", "lang": "py"}
    body = b'[[1, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
    cache: dict[Any, Signature | None] = {}

    def every_check() -> object:
        return (
            check_headers(headers)
            or check_size(body, 16 << 20)
            or check_body(payload)
            or check_arguments(task, payload[0], payload[1], cache)
        )

    print(f"worker, every check of one message:        {ns_per_call(every_check, 200_000) / 1000:6.2f} us")
    only_args = ns_per_call(lambda: check_arguments(task, [1, 2], {}, cache), 200_000)
    print(f"worker, argument check add(x, y):          {only_args / 1000:6.2f} us")
    with_options = ns_per_call(lambda: check_arguments(with_options_task, [1], {"c": 2, "z": 3}, cache), 200_000)
    print(f"worker, argument check (a, b=1, *, c, **): {with_options / 1000:6.2f} us")
    first = ns_per_call(lambda: inspect.signature(task.run), 20_000)
    print(f"worker, reading a signature (once a task): {first / 1000:6.2f} us")


def client_publish() -> None:
    queue = kombu.Queue("bench", kombu.Exchange("bench"), routing_key="bench")
    for size, n in ((100, 20_000), (100_000, 2_000)):
        body = [["x" * size], {}, None]
        best: dict[str, float] = {}
        for producer_cls in (kombu.Producer, LimitedProducer) * 4:  # interleaved against drift
            with kombu.Connection("memory://") as conn:
                producer = producer_cls(conn.default_channel)

                def publish(producer: Any = producer, body: Any = body) -> None:
                    producer.publish(
                        body,
                        exchange="bench",
                        routing_key="bench",
                        serializer="json",
                        headers={"task": "bench.add", "id": "1"},
                        declare=[queue],
                    )

                publish()  # declares the queue
                took = ns_per_call(publish, n, lambda: conn.default_channel.queue_purge("bench"))
            name = producer_cls.__name__
            best[name] = min(best.get(name, took), took)
        print(
            f"client, publish a {size:,}-character argument: kombu {best['Producer'] / 1000:.1f} us, "
            f"girder-worker {best['LimitedProducer'] / 1000:.1f} us"
        )


if __name__ == "__main__":
    worker_checks()
    client_publish()

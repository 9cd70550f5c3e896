"""Messages built to hurt a worker: a compression bomb, Celery's protocol 1, a Celery
built-in task. Each one is one log line and a failed result, and the worker serves on."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

import kombu
import psutil
import pytest

from .conftest import purge_queue
from .test_bad_messages import QUIET, lines_about

INFLATED = 256 * 1024 * 1024  # bytes the bomb inflates to


def gzip_bomb() -> bytes:
    """A kombu 'application/x-gzip' (zlib) body of ~256 KB that inflates to 256 MB."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    parts = [packer.compress(b'[["')]
    parts += [packer.compress(chunk) for _ in range(INFLATED // len(chunk))]
    parts.append(packer.compress(b'"], {}, null]'))
    parts.append(packer.flush())
    return b"".join(parts)


def publish(app: Any, queue: str, headers: dict[str, Any], body: bytes) -> None:
    with app.connection_for_write() as conn:
        kombu.Producer(conn.default_channel).publish(
            body,
            exchange=queue,
            routing_key=queue,
            headers=headers,
            content_type="application/json",
            content_encoding="utf-8",
            declare=[kombu.Queue(queue, kombu.Exchange(queue), routing_key=queue)],
        )


def worker_rss(worker: Any) -> int:
    main = psutil.Process(worker.proc.pid)
    return sum(p.memory_info().rss for p in [main, *main.children(recursive=True)])


POOLS = {"embedded": "prefork", "rabbitmq": "solo", "redis": "threads"}


def test_hostile_messages_are_one_line_each_and_the_worker_serves_on(
    broker, env_for, start_worker, client_app, unique_queue
):
    env = env_for(broker)
    worker = start_worker(env, "-P", POOLS[broker], "-c", "1", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        rss_before = worker_rss(worker)
        cases = {
            "bomb": (
                {"task": "gwtest.add", "compression": "application/x-gzip"},
                gzip_bomb(),
                "its body is compressed (application/x-gzip) and this worker does not accept compressed messages",
            ),
            "protocol 1": (
                {},
                json.dumps(
                    {"task": "gwtest.add", "args": [1, 2], "kwargs": {}, "timelimit": "soon"}
                ).encode(),  # the id is added below
                "it is a Celery protocol 1 message (the task named in its body), which this worker does not run",
            ),
            # A run's request is made from the headers and the embed: a message posing as the
            # worker's own state of the run (here: "already started", so no cancel flag, no
            # transforms, no result hooks) is refused.
            "worker's own header": (
                {"task": "gwtest.add", "girder_worker_started": True},
                b"[[1, 2], {}, null]",
                "its 'girder_worker_started' header is a name the worker keeps for its own state of a run; "
                "the message was discarded (drop it",
            ),
            "worker's own embed key": (
                {"task": "gwtest.add"},
                b'[[1, 2], {}, {"girder_worker_lease": {"holder": "x"}}]',
                "its 'girder_worker_lease' embed key is a name the worker keeps for its own state of a run",
            ),
            "backend_cleanup": (
                {"task": "celery.backend_cleanup"},
                b"[[], {}, null]",
                "it names a Celery built-in task that this worker does not run for a message; the message was "
                "discarded (list it in GIRDER_WORKER_CELERY_TASKS",
            ),
        }
        for case, (headers, body, says) in cases.items():
            task_id = str(uuid.uuid4())
            if case == "protocol 1":
                body = json.dumps({**json.loads(body), "id": task_id}).encode()
            else:
                headers = {**headers, "id": task_id}
            offset = len(worker.log)
            publish(app, unique_queue, headers, body)
            bad = app.AsyncResult(task_id)
            with pytest.raises(Exception):  # noqa: B017, PT011  (each case fails with its own error)
                bad.get(timeout=30)
            assert bad.state == "FAILURE", case
            about_it = lines_about(worker.log, offset, task_id)
            assert len(about_it) == 1, (case, about_it)
            assert says in about_it[0], (case, about_it[0])
            for _ in range(2):  # the worker serves on, and its slot was given back
                assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5, case
        assert worker_rss(worker) - rss_before < 64 * 1024 * 1024  # the bomb was never inflated
        assert "Traceback" not in worker.log
    finally:
        purge_queue(app, unique_queue)


def test_accepted_compression_is_inflated_no_further_than_the_limit(env_for, start_worker, client_app, unique_queue):
    limit = 1024 * 1024
    env = {
        **env_for("redis"),
        "GIRDER_WORKER_ACCEPT_COMPRESSION": "true",
        "GIRDER_WORKER_MAX_MESSAGE_BYTES": str(limit),
        "GIRDER_WORKER_CELERY_TASKS": "celery.backend_cleanup",
    }
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    try:
        small = app.send_task("gwtest.add", args=["a" * 1000, "b"], queue=unique_queue, compression="gzip")
        assert small.get(timeout=30) == "a" * 1000 + "b"

        task_id = str(uuid.uuid4())
        offset = len(worker.log)
        publish(app, unique_queue, {"task": "gwtest.add", "id": task_id, "compression": "gzip"}, gzip_bomb())
        with pytest.raises(Exception, match="inflates to more than GIRDER_WORKER_MAX_MESSAGE_BYTES"):
            app.AsyncResult(task_id).get(timeout=30)
        [line] = lines_about(worker.log, offset, task_id)
        assert "(1,048,576 bytes); it was not decompressed further" in line

        cleanup = app.send_task("celery.backend_cleanup", queue=unique_queue)  # enabled on this worker
        assert cleanup.get(timeout=30) is None
    finally:
        purge_queue(app, unique_queue)


RAW_ITEMS = {
    "not JSON": b"garbage\x00\xff",
    "half-written JSON": b'{"body": "W1sxLCAyXSwge30sIG51bGxd", "headers": {"task": "gwtest.add"',
    "a JSON array": b"[1, 2, 3]",
    "an empty object": b"{}",
    "an envelope of the wrong types": b'{"body": 1, "properties": "x", "headers": [], "content-type": 5}',
}


def test_items_pushed_onto_a_redis_queue_by_a_stranger_are_one_line_each(
    env_for, start_worker, client_app, unique_queue
):
    import redis

    env = env_for("redis")
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    raw = redis.Redis.from_url(env["GIRDER_WORKER_BROKER"])
    try:
        for case, item in RAW_ITEMS.items():
            offset = len(worker.log)
            raw.lpush(unique_queue, item)
            assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5, case
            dropped = [line for line in worker.log[offset:].splitlines() if "dropped an item of a Redis queue" in line]
            assert len(dropped) == 1, (case, worker.log[offset:])
            assert "something other than a Celery client writes to this broker" in dropped[0]
        assert worker.proc.poll() is None
        assert "Traceback" not in worker.log
    finally:
        raw.close()
        purge_queue(app, unique_queue)

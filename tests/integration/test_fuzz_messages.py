"""A bounded fuzzer of task messages against a real worker on each broker.

Hypothesis writes batches of envelopes and bodies that a publisher could send: random
values for the headers Celery reads, random JSON or bytes as bodies, near-valid
bodies with odd arguments, other content types; on Redis, raw garbage pushed straight
onto the queue's list. After every batch a control task must still run, and at the end
the worker must still be up. No header that names a URL is fuzzed: the worker would
call it, and tests talk to this machine only.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import kombu
import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .conftest import purge_queue
from .test_bad_messages import QUIET

# Values an AMQP header table can carry too (RabbitMQ closes the publisher's connection on
# an integer beyond 64 bits or an infinite float; that is the broker refusing, not the worker).
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HEADER_NAMES = [
    "timelimit", "retries", "eta", "expires", "shadow", "root_id", "parent_id", "group", "argsrepr",
    "kwargsrepr", "origin", "lang", "stamped_headers", "stamps", "girder_result_hooks", "compression",
    "ignore_result", "replaced_task_nesting", "delivery_info", "priority",
]  # fmt: skip
TASK = st.sampled_from(["gwtest.add", "gwtest.add", "gwtest.echo", "gwtest.nope", "celery.backend_cleanup", ""]) | JSON
TASK_ID = st.uuids().map(str) | st.sampled_from(["a/b", "..", "x" * 300, "\n", ""]) | JSON
BODY = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.lists(JSON, max_size=3), st.dictionaries(st.text(max_size=5), JSON, max_size=2), JSON).map(
        lambda t: json.dumps(list(t)).encode()
    ),
    JSON.map(lambda v: json.dumps({"py/tuple": [[v], {}, None]}).encode()),
)
CONTENT_TYPE = st.sampled_from(["application/json"] * 6 + ["application/x-python-serialize", "text/plain", ""])
MESSAGE = st.fixed_dictionaries(
    {
        "task": TASK,
        "id": TASK_ID,
        "extra": st.dictionaries(st.sampled_from(HEADER_NAMES), JSON, max_size=4),
        "body": BODY,
        "content_type": CONTENT_TYPE,
    }
)


def publish(app: Any, queue: str, message: dict[str, Any]) -> None:
    headers = {"task": message["task"], "id": message["id"], **message["extra"]}
    with app.connection_for_write() as conn:
        kombu.Producer(conn.default_channel).publish(
            message["body"],
            exchange=queue,
            routing_key=queue,
            headers=headers,
            content_type=message["content_type"] or "application/json",
            content_encoding="utf-8" if message["content_type"] != "application/x-python-serialize" else "binary",
            declare=[kombu.Queue(queue, kombu.Exchange(queue), routing_key=queue)],
        )


POOLS = {"embedded": "prefork", "rabbitmq": "threads", "redis": "solo"}


def test_fuzzed_messages_never_stop_a_worker(broker, env_for, start_worker, client_app, unique_queue):
    env = env_for(broker)
    worker = start_worker(env, "-P", POOLS[broker], "-c", "2", "-Q", unique_queue, "-n", f"{unique_queue}@%h", *QUIET)
    app = client_app(env)
    raw = redis.Redis.from_url(env["GIRDER_WORKER_BROKER"]) if broker == "redis" else None
    batches = 0

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each try costs a batch, bounded in time
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(batch=st.lists(MESSAGE, min_size=4, max_size=8), garbage=st.lists(st.binary(max_size=40), max_size=3))
    def run_batch(batch: list[dict[str, Any]], garbage: list[bytes]) -> None:
        nonlocal batches
        for message in batch:
            publish(app, unique_queue, message)
        if raw is not None:  # what no kombu producer would write: not an envelope at all
            for item in garbage:
                raw.lpush(unique_queue, item)
        control = app.send_task("gwtest.add", args=[batches, 1], queue=unique_queue, task_id=str(uuid.uuid4()))
        assert control.get(timeout=30) == batches + 1, (batch, garbage, worker.log[-3000:])
        assert worker.proc.poll() is None, worker.log[-3000:]
        batches += 1

    try:
        run_batch()
        assert batches >= 12
    finally:
        purge_queue(app, unique_queue)
        if raw is not None:
            raw.close()


@pytest.fixture(autouse=True)
def _no_hypothesis_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # hypothesis may write .hypothesis/ in the working directory

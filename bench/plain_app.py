"""The plain-Celery side of the benchmark: a bare ``celery.Celery`` app.

Nothing from girder-worker is used except, on the embedded broker, the kombu
transport class that ``BENCH_PLAIN_BROKER_TRANSPORT`` names (the benchmark sets
it from :func:`girder_worker._config.embedded_settings`, so both sides use the
same transport, folders and polling interval).

Environment (all set by ``bench/run.py``):

``BENCH_PLAIN_BROKER_URL``
    broker URL (``amqp://...``, ``redis://...`` or ``filesystem://``).
``BENCH_PLAIN_RESULT_BACKEND``
    result backend URL.
``BENCH_PLAIN_BROKER_TRANSPORT``
    optional kombu transport class (``module:Class``).
``BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS``
    optional JSON object of broker transport options.

Start a worker with ``python -m celery -A bench.plain_app worker`` from the
repository root.
"""

from __future__ import annotations

import json
import os

from celery import Celery

app = Celery("plain")
app.conf.update(
    broker_url=os.environ.get("BENCH_PLAIN_BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("BENCH_PLAIN_RESULT_BACKEND", "redis://127.0.0.1:6379/0"),
    # The serializer settings girder-worker uses, exactly.
    task_serializer="json",
    result_serializer="json",
    event_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    broker_connection_retry_on_startup=True,
)
if os.environ.get("BENCH_PLAIN_BROKER_TRANSPORT"):
    app.conf.broker_transport = os.environ["BENCH_PLAIN_BROKER_TRANSPORT"]
if os.environ.get("BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS"):
    app.conf.broker_transport_options = json.loads(os.environ["BENCH_PLAIN_BROKER_TRANSPORT_OPTIONS"])


@app.task
def add(x, y):
    return x + y


@app.task
def fibonacci(n):
    """The recursive Fibonacci of gwexample, declared the way the original
    girder-worker did: each recursive call goes through the task object."""
    if n == 1 or n == 2:
        return 1
    return fibonacci(n - 1) + fibonacci(n - 2)

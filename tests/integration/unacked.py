"""What a broker itself holds unacknowledged: RabbitMQ's count per queue, Redis's per task."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from ..conftest import REDIS_URL


def rabbitmq_unacknowledged(queue: str) -> int:
    """RabbitMQ's count of ``queue``'s delivered, unacknowledged messages (rabbitmqctl, as root)."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.fail("rabbitmqctl is not on PATH; the test reads the queue's unacknowledged count with it")
    listed = subprocess.run(
        [rabbitmqctl, "list_queues", "-q", "--no-table-headers", "name", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    counts = {name: int(count) for name, count in (line.split() for line in listed.splitlines() if line.strip())}
    return counts[queue]


def redis_unacknowledged(task_id: str) -> int:
    """How many of kombu's unacknowledged Redis messages (its ``unacked`` hash) are ``task_id``'s."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(task_id.encode() in value for value in client.hvals("unacked"))
    finally:
        client.close()

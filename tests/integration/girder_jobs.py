"""Helpers shared by the Girder job tests: schedule a job onto a test's own queue."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest

from .girder_server import RABBITMQ_URL, GirderServer
from .test_cancel import wait_for

QUEUED, RUNNING, SUCCESS, ERROR, CANCELED, CANCELING = 1, 2, 3, 4, 5, 824


@pytest.fixture(name="girder_queue")
def girder_queue_fixture(unique_queue: str) -> Iterator[str]:
    """A queue of the test's own on RabbitMQ; deleted (with its exchange) afterwards."""
    yield unique_queue
    with kombu.Connection(RABBITMQ_URL, connect_timeout=5) as conn:
        for entity in (kombu.Queue(unique_queue), kombu.Exchange(unique_queue)):
            with contextlib.suppress(Exception):
                entity(conn.default_channel).delete()


def on_queue(queue: str, pool: str = "solo", concurrency: int = 2) -> list[str]:
    """Worker options: ``pool``, consuming ``queue`` only, under a node name of its own.

    RabbitMQ may be shared with other test sessions; two workers with the same node
    name cannot both hold their remote-control queue.
    """
    return ["-P", pool, "-c", str(concurrency), "-Q", queue, "-n", f"{queue}@%h"]


def schedule(
    girder: GirderServer, queue: str, task: str, args: list[Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """Create a ``worker_handler`` job that runs ``task`` on ``queue`` and schedule it.

    That is what a Girder plugin does: Girder sends the task with the job's
    ``jobInfoSpec`` and moves the job to QUEUED.
    """
    job = girder.create_job(
        title=fields.pop("title", task),
        args=args or [],
        otherFields={"celeryQueue": queue, "celeryTaskName": task},
        **fields,
    )
    scheduled = girder.schedule(job["_id"])
    assert scheduled["status"] == QUEUED
    return scheduled


def log_of(job: dict[str, Any]) -> str:
    return "".join(job.get("log") or [])


def history(job: dict[str, Any]) -> list[int]:
    return [t["status"] for t in job.get("timestamps") or []]


def wait_started(marker: Path) -> None:
    wait_for(marker.exists, what=f"the task to write {marker}")

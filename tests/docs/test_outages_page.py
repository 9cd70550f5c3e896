"""The "Broker restarts and long jobs" page: its example client, run as a reader would,
and the start-up lines it shows, as tests/integration/test_startup_errors.py produces them."""

from __future__ import annotations

import re
import uuid

from ..conftest import ROOT, broker_env
from ..integration.private_brokers import free_port
from ..integration.test_startup_errors import REFUSED_LOGIN, UNKNOWN_VHOST

PAGE = ROOT / "docs" / "outages.rst"
EXAMPLE = ROOT / "docs" / "examples" / "publish_during_outage.py"
CONFIRMS = ROOT / "docs" / "examples" / "confirm_published.py"


def test_a_publish_to_an_unreachable_broker_raises_a_clear_error(run):
    port = free_port()
    result = run(str(EXAMPLE), str(port))

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == (
        f"task gwexample.analyses.tasks.fibonacci was not sent: the broker at amqp://guest:**@127.0.0.1:{port}// "
        "is unreachable ([Errno 111] Connection refused); start it or fix GIRDER_WORKER_BROKER, then publish the "
        "task again"
    )
    assert re.fullmatch(r"the client retried for \d+ s; publish it again once the broker is back", second)
    assert result.stderr == ""
    assert first.replace(str(port), "5699") in PAGE.read_text()


def test_the_page_shows_the_refusals_the_worker_prints():
    text = PAGE.read_text()
    assert f"\n   {REFUSED_LOGIN}\n" in text
    assert f"\n   {UNKNOWN_VHOST}\n" in text


def test_confirm_published_names_the_tasks_rabbitmq_refused(run):
    queue = f"gwtest-example-{uuid.uuid4().hex[:8]}"
    broker = broker_env("rabbitmq", ROOT)["GIRDER_WORKER_BROKER"]
    result = run(str(CONFIRMS), queue, env={"GIRDER_WORKER_BROKER": broker})

    assert result.returncode == 0, result.stderr
    task = "gwexample.analyses.tasks.fibonacci"
    refused = f"RabbitMQ refused {task}[example-3], {task}[example-4] 3 times, so it did not queue them"
    assert result.stdout.splitlines() == ["published 5 tasks", f"{refused}; publish those tasks again"]
    assert result.stderr.splitlines() == [
        f"girder-worker: RabbitMQ refused {task}[example-{i}] 3 times (basic.nack), so it is not queued: look at the "
        "queue's limits (x-max-length, x-overflow) and RabbitMQ's log; publish it again"
        for i in (3, 4)
    ]
    page = PAGE.read_text()
    for line in result.stdout.splitlines():
        assert f"\n    {line}\n" in page

"""The "Broker restarts and long jobs" page: its example client, run as a reader would,
and the start-up lines it shows, as tests/integration/test_startup_errors.py produces them."""

from __future__ import annotations

import re

from ..conftest import ROOT
from ..integration.private_brokers import free_port
from ..integration.test_startup_errors import REFUSED_LOGIN, UNKNOWN_VHOST

PAGE = ROOT / "docs" / "outages.rst"
EXAMPLE = ROOT / "docs" / "examples" / "publish_during_outage.py"


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

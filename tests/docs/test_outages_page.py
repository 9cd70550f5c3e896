"""The "Broker restarts and long jobs" page: its example client, run as a reader would."""

from __future__ import annotations

import re

from ..conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "publish_during_outage.py"


def test_a_publish_to_an_unreachable_broker_raises_a_clear_error(run):
    result = run(str(EXAMPLE))

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "task example-1 was not sent: OperationalError: [Errno 111] Connection refused"
    assert re.fullmatch(r"the client retried for \d+ s; publish it again once the broker is back", second)
    assert result.stderr == ""

"""A plugin's tests/conftest.py whose worker runs like a production one."""

import pytest

pytest_plugins = ["girder_worker.testing"]


@pytest.fixture
def gw_worker_args():
    # The prefork pool with two processes; the default, -P threads -c 2, starts faster.
    return ("-P", "prefork", "-c", "2")


@pytest.fixture
def gw_worker_env():
    # Send the log and progress to the job ten times a second rather than twice.
    return {"GIRDER_WORKER_REPORT_INTERVAL": "0.1"}

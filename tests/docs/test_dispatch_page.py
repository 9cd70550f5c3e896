"""The fair dispatch page's example: the environment file of a short-task queue's workers."""

from __future__ import annotations

import re

from girder_worker._app import create_app
from girder_worker._config import VARIABLES, read_config

from ..conftest import ROOT, broker_env
from ..integration.conftest import close_app

EXAMPLES = ROOT / "docs" / "examples"


def read_env_file(name: str) -> dict[str, str]:
    lines = (EXAMPLES / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def prefetch_count(env: dict[str, str], node: str) -> int:
    app = create_app(read_config(env))
    try:
        stats = app.control.inspect(destination=[node], timeout=10).stats() or {}
    finally:
        close_app(app)
    return int(stats[node]["prefetch_count"])


def test_the_systemd_unit_reads_its_instances_environment_file_after_the_common_one():
    unit = (EXAMPLES / "girder-worker@.service").read_text()

    files = re.findall(r"^EnvironmentFile=(.*)$", unit, re.MULTILINE)

    # "-": a missing file is no error, as for the instances without settings of their own.
    assert files == ["/etc/girder-worker/env", "-/etc/girder-worker/%i.env"]


def test_the_thumbnails_workers_reserve_tasks_ahead_and_the_others_do_not(start_worker, tmp_path):
    own = read_env_file("thumbnails.env")
    assert set(own) <= set(VARIABLES)
    base = broker_env("embedded", tmp_path / "data")
    options = ("-P", "prefork", "-c", "2")

    thumbnails = start_worker({**base, **own}, *options, "-Q", "thumbnails", "-n", "thumbnails@node1", plugins=())
    analysis = start_worker(base, *options, "-Q", "analysis", "-n", "analysis@node1", plugins=())

    assert prefetch_count(base, "thumbnails@node1") == 2 * 4
    assert "fair dispatch" not in thumbnails.log
    assert "fair dispatch: this worker takes a task only when one of its 2 process(es) is free" in analysis.log


def test_the_page_says_how_long_a_full_rabbitmq_worker_holds_an_acknowledgement():
    from girder_worker.broker._dispatch import HOLD_SECONDS

    page = " ".join((ROOT / "docs" / "dispatch.rst").read_text().split())

    assert f"A worker still full after {HOLD_SECONDS:g} seconds cancels its subscription" in page

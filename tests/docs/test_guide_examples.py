"""The quick start's, deployment page's and testing page's examples, run as a reader would.

The plugin template page's files (docs/examples/gw-squares) and the testing page's
conftest_prefork.py are run in a fresh environment by
tests/integration/test_plugin_template.py.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import zlib

import pytest

from girder_worker._app import create_app
from girder_worker._config import VARIABLES, read_config

from ..conftest import ROOT, broker_env, clean_env

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
INVENTORIES = DOCS / "_inventories"


def test_the_demo_prints_what_the_quick_start_shows(run):
    command, _, shown = (EXAMPLES / "demo_output.txt").read_text().partition("\n")
    assert command == "$ hatch run demo"

    result = run(str(ROOT / "scripts" / "demo.py"), merge_stderr=True)

    assert result.returncode == 0, result.stdout
    # Only the temporary directory's name differs from run to run.
    same_dir = re.sub(r"\(/\S+/girder-worker-demo-\w+\)", "(DIR)", result.stdout)
    assert same_dir == re.sub(r"\(/\S+/girder-worker-demo-\w+\)", "(DIR)", shown)


def test_the_environment_file_sets_variables_girder_worker_reads():
    lines = [line for line in (EXAMPLES / "girder-worker.env").read_text().splitlines() if line and line[0] != "#"]
    env = dict(line.split("=", 1) for line in lines)

    assert set(env) <= set(VARIABLES)
    config = read_config(env)
    assert config.settings["broker_url"] == env["GIRDER_WORKER_BROKER"]
    assert config.settings["result_backend"] == env["GIRDER_WORKER_BACKEND"]
    assert config.strict_plugins
    assert not config.embedded


def test_the_systemd_unit_starts_a_worker_on_its_queue(start_worker, tmp_path):
    unit = (EXAMPLES / "girder-worker@.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    program, *options = shlex.split(exec_start)
    assert program == "/opt/girder-worker/bin/girder-worker"
    # What systemd makes of the specifiers for girder-worker@gpu on host node1.
    options = [o.replace("%i", "gpu").replace("%H", "node1") for o in options]

    worker = start_worker(broker_env("embedded", tmp_path / "data"), *options, plugins=())

    assert ".> gpu " in worker.log
    assert "gpu@node1 ready." in worker.log
    assert re.search(r"^EnvironmentFile=/etc/girder-worker/env$", unit, re.MULTILINE)


def test_the_routing_plugin_sends_heavy_tasks_to_the_gpu_queue(tmp_path):
    spec = importlib.util.spec_from_file_location("routing_plugin", EXAMPLES / "routing_plugin.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}))
    try:
        plugin = module.ThumbnailsPlugin(app)

        router = app.amqp.router
        assert router.route({}, "gw_thumbnails.heavy.render")["queue"].name == "gpu"
        assert router.route({}, "gw_thumbnails.light.resize")["queue"].name == "celery"
        assert plugin.task_imports() == ["gw_thumbnails.light", "gw_thumbnails.heavy"]
    finally:
        app.close()


def test_celery_a_girder_worker_app_worker_still_runs_the_plugins_tasks(tmp_path):
    data = broker_env("embedded", tmp_path / "data")
    log_path = tmp_path / "celery.log"
    with log_path.open("wb") as log:
        # The original girder-worker's start command.
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "girder_worker.app", "worker", "-l", "info", "-P", "solo"],
            env=clean_env(data),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    app = create_app(read_config(data))
    try:
        result = app.send_task("gwexample.analyses.tasks.fibonacci", args=[20])
        assert result.get(timeout=60) == 6765
        assert "  . gwexample.analyses.tasks.fibonacci" in log_path.read_text()
    finally:
        app.close()
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("name", ["python", "celery"])
def test_each_inventory_is_its_source(name):
    from sphinx.util.inventory import InventoryFile

    source = (INVENTORIES / f"{name}.txt").read_text()
    data = (INVENTORIES / f"{name}.inv").read_bytes()
    head, compressed = data.split(b"zlib.\n", 1)

    objects = [line for line in source.splitlines() if line and not line.startswith("#")]
    assert zlib.decompress(compressed).decode().splitlines() == objects
    project = re.search(r"^# Project: (.*)$", source, re.MULTILINE)
    assert project is not None
    assert f"# Project: {project.group(1)}\n".encode() in head
    # And Sphinx reads it as it does at build time.
    inventory = InventoryFile.loads(data, uri="https://example.invalid")
    assert sum(len(items) for items in inventory.data.values()) == len(objects)

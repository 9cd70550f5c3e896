"""What a worker imports at start, and what it leaves to the first task that needs it.

A worker's start is mostly imports (about 60 ms of its ~430 ms on these machines
went to girder-worker's own modules). The analysis engine, its formats and registry
(12 ms) and the docker_run machinery (7 ms) are loaded by the first run that uses
them; start-time error reports stay at start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

#: Loaded by the first analysis or container run, not by a worker's start.
DEFERRED = (
    "girder_worker.analysis._engine",
    "girder_worker.analysis._registry",
    "girder_worker.analysis._formats_table",
    "girder_worker.docker._run",
    "girder_worker.docker._engine",
    "http.client",
)

# What a worker does before it takes tasks: the app, the plugins, the task modules,
# the worker_init signal, the worker's bootsteps (the docker reaper's among them).
START = textwrap.dedent(
    """
    import json, sys
    from celery import signals
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": sys.argv[1], "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"}))
    app.load_plugins()
    app.loader.import_default_modules()
    signals.worker_init.send(sender=None)
    worker = app.WorkController(hostname="start@test", pool_cls="solo", without_mingle=True, without_gossip=True)
    at_start = sorted(m for m in %(deferred)r if m in sys.modules)
    tasks = sorted(t for t in app.tasks if t.startswith("girder_worker."))
    converted = app.tasks["girder_worker.convert"].delay(
        "table", {"format": "csv", "data": "a\\n1\\n"}, {"format": "rows"}
    ).get(disable_sync_subtasks=False)  # the WorkController made this process a worker
    print(json.dumps({"at_start": at_start, "tasks": tasks, "converted": converted,
                      "after_convert": sorted(m for m in %(deferred)r if m in sys.modules)}))
    """
)


def _start(tmp_path, env=None):
    script = START % {"deferred": DEFERRED}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_starting_worker_registers_every_task_and_loads_no_analysis_or_docker_machinery(tmp_path):
    found, _ = _start(tmp_path)

    assert found["at_start"] == []
    assert {
        "girder_worker.run",
        "girder_worker.convert",
        "girder_worker.validators",
        "girder_worker.docker.tasks.docker_run",
    } <= set(found["tasks"])
    # The first analysis loads what it needs, and works.
    assert found["converted"] == {"format": "rows", "data": {"fields": ["a"], "rows": [{"a": 1}]}}
    assert "girder_worker.analysis._engine" in found["after_convert"]


def test_a_broken_analysis_extension_is_still_reported_at_start(tmp_path):
    site = tmp_path / "site"
    info = site / "gw_broken-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gw-broken\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[girder_worker_analysis]\nbroken = gw_broken:register\n")
    (site / "gw_broken.py").write_text("def register(registry):\n    raise RuntimeError('no luck')\n")

    found, stderr = _start(tmp_path, {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])})

    # With an extension installed the registry is built at start, before any task runs.
    assert "girder_worker.analysis._registry" in found["at_start"]
    assert (
        "analysis extension 'broken' (entry point broken = gw_broken:register, from gw-broken 2.0) failed: "
        "RuntimeError: no luck; fix or uninstall gw-broken"
    ) in stderr
    assert found["converted"]["data"]["rows"] == [{"a": 1}]


def test_the_names_of_docker_tasks_that_live_with_the_run_are_still_there():
    from girder_worker.docker import _run
    from girder_worker.docker.tasks import ContainerError, _docker_run, stop_timeout

    assert ContainerError is _run.ContainerError
    assert stop_timeout is _run.stop_timeout
    assert callable(_docker_run)

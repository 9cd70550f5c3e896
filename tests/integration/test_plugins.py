"""Broken plugins: each is reported by name, entry point and distribution; the rest load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ..conftest import clean_env

BROKEN = {
    "broken_import": ("gw-broken-import", "failed to import: ModuleNotFoundError"),
    "broken_ctor": ("gw-broken-ctor", "failed in its constructor: RuntimeError: the constructor"),
    "broken_task_imports": ("gw-broken-task-imports", "failed in task_imports(): ValueError"),
    "missing_module": ("gw-missing-module", "failed to import its task module 'gwmissingmodule.no_such_tasks'"),
    "not_a_plugin": ("gw-not-a-plugin", "does not implement the plugin interface"),
}


@pytest.fixture
def embedded(env_for):
    return env_for("embedded")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_is_named_and_the_others_still_run(name, embedded, start_worker, client_app):
    distribution, problem = BROKEN[name]
    worker = start_worker(embedded, "-P", "solo", plugins=("good", "broken"))
    lines = [line for line in worker.log.splitlines() if f"plugin {name!r} (entry point {name} = " in line]
    assert len(lines) == 1, worker.log
    assert f"from {distribution} 0.1.0)" in lines[0]
    assert problem in lines[0]
    assert "GIRDER_WORKER_PLUGINS" in lines[0]
    app = client_app(embedded)
    assert app.send_task("gwtest.add", args=[20, 22]).get(timeout=30) == 42
    assert app.send_task("gwexample.analyses.tasks.fibonacci", args=[10]).get(timeout=30) == 55


@pytest.mark.parametrize("how", ["option", "environment"])
def test_strict_mode_stops_the_worker(how, embedded, start_worker):
    if how == "option":
        worker = start_worker(embedded, "--strict-plugins", plugins=("good", "broken"), ready=False)
    else:
        worker = start_worker(
            {**embedded, "GIRDER_WORKER_STRICT_PLUGINS": "true"}, plugins=("good", "broken"), ready=False
        )
    assert worker.wait_exit(timeout=60) != 0
    for name in BROKEN:
        assert f"plugin {name!r}" in worker.log
    assert "strict plugin loading is on, so the worker does not start" in worker.log
    assert " ready." not in worker.log


def test_only_the_plugins_named_in_girder_worker_plugins_load(embedded, start_worker):
    worker = start_worker({**embedded, "GIRDER_WORKER_PLUGINS": "gwexample"}, plugins=("good", "broken"))
    assert "  . gwexample.analyses.tasks.fibonacci" in worker.log
    assert "gwtest.add" not in worker.log
    assert "broken_ctor" not in worker.log


def test_plugins_command_lists_each_plugin_and_its_error(embedded, installed_plugins):
    env = clean_env({**embedded, "PYTHONPATH": f"{installed_plugins('good')}:{installed_plugins('broken')}"})
    out = subprocess.run(
        [sys.executable, "-m", "girder_worker", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0
    assert "gwexample\n  entry point:  gwexample = gwexample:GWExamplePlugin\n" in out.stdout
    assert "  tasks:        gwexample.analyses.tasks.fibonacci, gwexample.analyses.tasks.wait" in out.stdout
    assert "  distribution: gw-broken-ctor 0.1.0\n  error:        failed in its constructor" in out.stdout
    strict = subprocess.run(
        [sys.executable, "-m", "girder_worker", "plugins", "--strict-plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert strict.returncode == 1

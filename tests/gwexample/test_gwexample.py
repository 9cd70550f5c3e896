"""The example plugin, as the plugin guide describes it."""

from __future__ import annotations

from importlib.metadata import entry_points

from girder_worker._app import create_app
from girder_worker._config import read_config
from gwexample import GWExamplePlugin


def test_entry_point_names_the_plugin_class():
    (ep,) = [ep for ep in entry_points(group="girder_worker_plugins") if ep.name == "gwexample"]
    assert ep.value == "gwexample:GWExamplePlugin"
    assert ep.load() is GWExamplePlugin


def test_constructor_sets_a_five_minute_time_limit(tmp_path):
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}))
    plugin = GWExamplePlugin(app)
    assert app.conf.task_time_limit == 300
    assert plugin.task_imports() == ["gwexample.analyses.tasks"]
    app.close()


def test_fibonacci_runs_eagerly_in_a_loaded_app(tmp_path):
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"}))
    reports = app.load_plugins()
    assert {r.name: r.tasks for r in reports}["gwexample"] == [
        "gwexample.analyses.tasks.fibonacci",
        "gwexample.analyses.tasks.wait",
    ]
    from gwexample.analyses.tasks import fibonacci

    assert fibonacci.delay(26).get() == 121393
    app.close()

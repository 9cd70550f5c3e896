"""Run every example the documentation shows and check what a reader would see."""

from __future__ import annotations

import re
import shutil
from importlib.metadata import PathDistribution, distribution, version
from pathlib import Path

from ..conftest import ROOT

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
GWEXAMPLE = ROOT / "packages" / "gwexample"


def documented_output(name: str) -> str:
    """A shown console session's output: the file without its ``$ command`` line."""
    command, _, output = (EXAMPLES / name).read_text().partition("\n")
    assert command == "$ girder-worker plugins"
    return output


def as_documented(output: str) -> str:
    # The docs show gwexample at a release version, so they need no edit per release.
    output = output.replace(f"girder-worker-core {version('girder-worker-core')}", "girder-worker-core 1.0.0")
    return output.replace(f"gwexample {version('gwexample')}", "gwexample 1.0.0")


def test_config_update_prints_the_time_limit(run):
    result = run(str(EXAMPLES / "config_update.py"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "300\n"
    assert result.stderr == ""


def test_examples_use_the_data_dir_they_are_given(run, tmp_path):
    given = tmp_path / "given"

    result = run(str(EXAMPLES / "config_update.py"), str(given))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "300\n"
    assert (given / "broker" / "queue").is_dir()
    assert (given / "results").is_dir()


def test_eager_fibonacci_prints_6765(run):
    result = run(str(EXAMPLES / "eager_fibonacci.py"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "6765\n"
    assert result.stderr == ""


def test_unknown_setting_warning_names_the_key(run):
    example = EXAMPLES / "unknown_setting.py"

    result = run(str(example))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n"
    warning = re.search(r"^(\S+):(\d+): (UnknownSettingWarning: .*)$", result.stderr, re.MULTILINE)
    assert warning, result.stderr
    path, line, message = warning.groups()
    # It points at the reader's line, not at girder-worker's code.
    assert Path(path) == example
    assert 'app.config.update({"TASK_TIME_LIMITS": 300})' in example.read_text().splitlines()[int(line) - 1]
    assert "configuration key 'TASK_TIME_LIMITS' is not a Celery setting" in message
    assert "did you mean 'task_time_limit'?" in message
    # The plugin guide quotes the warning as a reader sees it.
    assert f"/{example.name}:{line}: {message}\n" in (DOCS / "plugins.rst").read_text()


def test_legacy_style_task_runs_on_the_app(run):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from legacy_tasks import count_words\n"
        "print(count_words.delay(['three words here', 'and two']).get())\n"
    )

    result = run("-c", code, str(EXAMPLES), env={"GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "5\n"


def test_example_client_prints_121393(run):
    # Eager, so without a worker; `hatch run demo` runs it against a real worker.
    result = run(str(GWEXAMPLE / "example_client.py"), env={"GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "121393\n"


def test_setup_py_declares_the_same_entry_point_as_pyproject(run, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(GWEXAMPLE / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLES / "setup.py", project / "setup.py")
    metadata = tmp_path / "metadata"
    metadata.mkdir()
    # What pip does first with a setup.py project: ask setuptools for its metadata.
    code = (
        "import os, sys\n"
        "from setuptools import build_meta\n"
        "os.chdir(sys.argv[1])\n"
        "build_meta.prepare_metadata_for_build_wheel(sys.argv[2])\n"
    )

    result = run("-c", code, str(project), str(metadata))

    assert result.returncode == 0, result.stderr
    [dist_info] = metadata.glob("*.dist-info")
    built = PathDistribution(dist_info)
    from_setup_py = built.entry_points.select(group="girder_worker_plugins")
    from_pyproject = distribution("gwexample").entry_points.select(group="girder_worker_plugins")
    assert [(ep.name, ep.value) for ep in from_setup_py] == [("gwexample", "gwexample:GWExamplePlugin")]
    assert [(ep.name, ep.value) for ep in from_pyproject] == [("gwexample", "gwexample:GWExamplePlugin")]


def test_plugins_listing_is_as_documented(run):
    result = run("-m", "girder_worker", "plugins", merge_stderr=True)

    assert result.returncode == 0, result.stdout
    assert as_documented(result.stdout) == documented_output("plugins_output.txt")


def test_broken_plugin_is_reported_as_documented(run, broken_plugin):
    result = run("-m", "girder_worker", "plugins", env=broken_plugin, merge_stderr=True)

    assert result.returncode == 0, result.stdout
    assert as_documented(result.stdout) == documented_output("plugins_output_broken.txt")


def test_strict_plugins_stops_on_a_broken_plugin(run, broken_plugin):
    worker = run("-m", "girder_worker", "--strict-plugins", "-P", "solo", env=broken_plugin)
    listing = run("-m", "girder_worker", "plugins", env={**broken_plugin, "GIRDER_WORKER_STRICT_PLUGINS": "true"})

    assert worker.returncode == 1
    assert worker.stdout == ""
    assert worker.stderr.splitlines()[-1] == (
        "girder-worker: error: strict plugin loading is on, so the worker does not start"
    )
    assert "plugin 'thumbnails' (entry point thumbnails = gw_thumbnails:ThumbnailsPlugin" in worker.stderr
    assert listing.returncode == 1


def test_examples_are_shown_on_the_site():
    pages = "".join(page.read_text() for page in DOCS.glob("*.rst"))
    for example in sorted(EXAMPLES.iterdir()):
        if example.suffix in (".py", ".txt"):
            assert f"examples/{example.name}" in pages, f"{example.name} is shown on no page"


def test_every_example_has_a_test():
    # The files the tests above run; a new example needs a test of its own.
    tested = {
        "analysis_plugin.py",
        "analysis_plugin_output.txt",
        "analysis_workflow.json",
        "builtin_client.py",
        "builtin_client_output.txt",
        "builtin_convert.py",
        "builtin_convert_output.txt",
        "cancel_client.py",
        "cancellable_tasks.py",
        "config_update.py",
        "conftest_prefork.py",
        "confirm_published.py",  # tests/docs/test_outages_page.py
        "delivery_tasks.py",
        "docker_example.py",  # tests/docker/test_docs_example.py
        "demo_output.txt",
        "eager_fibonacci.py",
        "girder_publish.py",
        "girder_tasks.py",
        "girder-worker.env",
        "girder-worker@.service",
        "legacy_tasks.py",
        "metrics_query.py",  # tests/integration/test_metrics.py
        "metrics_query_output.txt",
        "oversized_message.py",
        "oversized_message_output.txt",
        "pipeline_steps.py",  # tests/docs/test_pipeline_page.py
        "pipeline_steps_output.txt",
        "plugins_output.txt",
        "plugins_output_broken.txt",
        "progress_client.py",  # tests/docs/test_progress_page.py
        "progress_tasks.py",
        "publish_during_outage.py",
        "redis_results.py",
        "redis_results_output.txt",
        "routing_plugin.py",
        "setup.py",
        "thumbnails.env",
        "time_limited_tasks.py",
        "transforms_example.py",  # tests/docs/test_transforms_page.py
        "unknown_setting.py",
    }
    present = {p.name for p in EXAMPLES.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert present == tested


def test_cancel_client_cancels_the_wait_task(run, start_worker, tmp_path):
    from ..conftest import broker_env

    env = broker_env("embedded", tmp_path / "data")
    start_worker(env, "-P", "solo", plugins=())
    result = run(str(EXAMPLES / "cancel_client.py"), env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\nREVOKED\n"


def test_cancellable_tasks_example_behaves_as_documented(tmp_path):
    import sys

    from celery import Celery

    sys.path.insert(0, str(EXAMPLES))
    try:
        import cancellable_tasks
    finally:
        sys.path.remove(str(EXAMPLES))
    app = Celery("docs-example", set_as_current=False)
    app.conf.task_always_eager = True
    app.set_current()
    assert cancellable_tasks.smooth.delay([1, 2, 3]).get() == [2, 4, 6]
    assert cancellable_tasks.simulate.cancel_grace_period == 120


def test_delivery_tasks_example_behaves_as_documented(start_worker, tmp_path):
    import os
    import signal
    import time

    import psutil

    from girder_worker._app import create_app
    from girder_worker._config import read_config

    from ..conftest import broker_env
    from ..integration.conftest import close_app

    env = {**broker_env("embedded", tmp_path / "data"), "PYTHONPATH": str(EXAMPLES)}
    worker = start_worker(env, "-P", "prefork", "-c", "2", "--include", "delivery_tasks", plugins=())
    app = create_app(read_config(env))
    ledger = tmp_path / "ledger.txt"
    try:
        tiles = app.send_task("delivery_tasks.render_tiles", args=["slide7", str(tmp_path)])
        charge = app.send_task("delivery_tasks.charge_account", args=["acct-1", 20, str(ledger)])
        assert worker.proc is not None
        deadline = time.monotonic() + 30
        while {tiles.state, charge.state} != {"STARTED"} and time.monotonic() < deadline:
            time.sleep(0.05)
        # The embedded broker: each run's STARTED is read from its lease, which the claim wrote.
        assert tiles.state == charge.state == "STARTED"
        assert set(tiles.info) == {"pid", "hostname"}
        time.sleep(0.3)  # both runs are under way in the two pool processes
        for child in psutil.Process(worker.proc.pid).children():
            os.kill(child.pid, signal.SIGKILL)  # as the out-of-memory killer would

        assert tiles.get(timeout=60) == 4
        assert sorted(p.name for p in tmp_path.glob("slide7-*.png")) == [f"slide7-{i}.png" for i in range(4)]
        assert charge.get(timeout=60, propagate=False) is not None
        assert charge.state == "FAILURE"
        assert str(charge.result) == "worker lost once (at-most-once)"
        assert not ledger.exists()
        worker.wait_for_log(
            r"render_tiles\[\S+\] was lost \(its pool process died .*delivered again \(delivery 2 of 3\)"
        )
    finally:
        close_app(app)


def test_redis_results_example_prints_what_the_page_shows(run):
    # db 13: the example removes what it stores (forget) and nothing else uses it.
    result = run(str(EXAMPLES / "redis_results.py"), "redis://127.0.0.1:6379/13")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "redis_results_output.txt").read_text()

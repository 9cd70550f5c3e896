"""The ``girder-worker`` command's own surface: help, version, commands, configuration hygiene.

Each test runs the real command (``python -m girder_worker``) the way a user types
it and asserts what the user reads. Commands that talk to a worker are tested in
tests/integration/test_status.py, start-up failures in test_startup_errors.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from girder_worker import _config
from girder_worker._config import VARIABLES, ConfigError, check_variables, read_config

from ..conftest import clean_env


def girder_worker(*args: str, env: dict[str, str] | None = None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "girder_worker", *args],
        env=clean_env({**base, **(env or {})}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_the_commands_every_variable_and_the_worker_options(tmp_path):
    out = girder_worker("--help", tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: girder-worker [--strict-plugins] [celery worker options]\n")
    commands = out.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in commands.splitlines()] == [
        "worker",
        "status",
        "plugins",
        "new-plugin",
        "inspect",
        "control",
        "events",
        "purge",
        "result",
        "call",
        "shell",
        "report",
        "flower",
    ]
    for name in VARIABLES:
        assert f"\n  {name}\n" in out.stdout
    assert "--concurrency" in out.stdout  # then celery worker's own options
    assert "ready." not in out.stdout + out.stderr  # and no worker ran


def test_worker_command_is_the_bare_command(tmp_path):
    bare = girder_worker("--help", tmp_path=tmp_path)
    worker = girder_worker("worker", "--help", tmp_path=tmp_path)

    assert worker.returncode == 0, worker.stderr
    assert "Unable to parse extra configuration" not in worker.stdout + worker.stderr
    assert worker.stdout == bare.stdout


@pytest.mark.parametrize(
    ("command", "first_line"),
    [
        ("plugins", "usage: girder-worker plugins [-h] [--strict-plugins]"),
        ("status", "usage: girder-worker status [-h] [--timeout SECONDS]"),
        ("new-plugin", "usage: girder-worker new-plugin [-h] [-o DIR] [--no-input]"),
        ("inspect", "Usage: girder-worker inspect [OPTIONS] COMMAND"),
        ("control", "Usage: girder-worker control [OPTIONS] COMMAND"),
        ("purge", "Usage: girder-worker purge [OPTIONS]"),
    ],
)
def test_each_command_help_prints_help_and_runs_nothing(command, first_line, tmp_path):
    out = girder_worker(command, "--help", tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith(first_line), out.stdout
    assert "entry point:" not in out.stdout  # `plugins --help` listed the plugins before
    assert not (tmp_path / "girder-worker-plugin").exists()
    assert out.stderr == ""


def test_version_lists_the_installed_plugins(tmp_path):
    out = girder_worker("--version", tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "plugins (entry point group girder_worker_plugins):" in lines
    assert "  gwexample = gwexample:GWExamplePlugin (gwexample 1.0.0)" in lines
    assert "  docker = girder_worker.docker:DockerPlugin (girder-worker-core 1.0.0)" in lines


def test_an_unknown_command_is_one_line_with_a_close_match(tmp_path):
    out = girder_worker("statu", tmp_path=tmp_path)

    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "girder-worker: error: unknown command 'statu' (did you mean 'status'?); the commands are worker, "
        "status, plugins, new-plugin, inspect, control, events, purge, result, call, shell, report, flower, "
        "and options without a command run a worker (see girder-worker --help)"
    ]


def test_flower_says_how_to_install_it_when_it_is_missing(tmp_path):
    out = girder_worker("flower", "--help", tmp_path=tmp_path)

    if importlib.util.find_spec("flower") is None:
        assert out.returncode == 1
        assert out.stderr.splitlines() == [
            "girder-worker: error: Flower is not installed; install it with `pip install flower`, "
            "then run `girder-worker flower`"
        ]
    else:  # installed here: it is Celery's flower command on our app
        assert out.returncode == 0, out.stderr
        assert "Usage: girder-worker flower" in out.stdout


def test_celery_commands_need_no_app_option(tmp_path):
    """`girder-worker report` is `celery -A girder_worker.app report`: it names our app and its tasks."""
    out = girder_worker("report", tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    assert "loader   -> girder_worker._app.Loader" in out.stdout
    assert "transport:girder_worker.broker._embedded:Transport" in out.stdout


# -- configuration hygiene --------------------------------------------------------


def test_a_misspelt_variable_is_one_warning_with_the_close_name(tmp_path):
    out = girder_worker("plugins", env={"GIRDER_WORKER_BROKR": "redis://127.0.0.1:6379/0"}, tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "GIRDER_WORKER_BROKR: unknown girder-worker variable, ignored (did you mean GIRDER_WORKER_BROKER?); "
        "rename or unset it (girder-worker --help lists the variables)"
    ]


def test_a_client_gets_the_same_warning(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import girder_worker.app"],
        env=clean_env({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), "GIRDER_WORKER_LOGING_LEVEL": "debug"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "GIRDER_WORKER_LOGING_LEVEL: unknown girder-worker variable, ignored (did you mean "
        "GIRDER_WORKER_LOGGING_LEVEL?); rename or unset it (girder-worker --help lists the variables)"
    ]


def test_strict_config_makes_an_unknown_variable_an_error(tmp_path):
    env = {"GIRDER_WORKER_BROKR": "redis://127.0.0.1:6379/0", "GIRDER_WORKER_STRICT_CONFIG": "true"}
    out = girder_worker("-P", "solo", env=env, tmp_path=tmp_path)

    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "girder-worker: error: GIRDER_WORKER_BROKR: unknown girder-worker variable (did you mean "
        "GIRDER_WORKER_BROKER?); rename or unset it (GIRDER_WORKER_STRICT_CONFIG=true makes unknown "
        "variables errors)"
    ]
    assert out.stdout == ""


def test_known_variables_are_read_from_the_table_when_checked(monkeypatch, tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_FRESHLY_ADDED": "1"}
    assert len(check_variables(env)) == 1
    monkeypatch.setitem(_config.VARIABLES, "GIRDER_WORKER_FRESHLY_ADDED", "a variable added by another module")
    assert check_variables(env) == []
    assert check_variables({"GIRDER_WORKER_ZZZ": "1"}) == [
        "GIRDER_WORKER_ZZZ: unknown girder-worker variable, ignored; rename or unset it "
        "(girder-worker --help lists the variables)"
    ]


def test_broker_max_retries_is_checked_and_bounds_celery_reconnections(tmp_path):
    base = {"GIRDER_WORKER_BROKER": "redis://127.0.0.1:6379/0"}
    assert read_config(base).settings["broker_connection_max_retries"] is None
    config = read_config({**base, "GIRDER_WORKER_BROKER_MAX_RETRIES": "5"})
    assert config.broker_max_retries == 5
    assert config.settings["broker_connection_max_retries"] == 5
    with pytest.raises(ConfigError, match=r"^GIRDER_WORKER_BROKER_MAX_RETRIES: '-1' is not a whole number >= 0; "):
        read_config({**base, "GIRDER_WORKER_BROKER_MAX_RETRIES": "-1"})


@pytest.mark.parametrize(
    ("named", "hint"),
    [
        ("gwexampel", "(did you mean 'gwexample'?)"),
        ("girder_worker", "(did you mean 'docker'? 'girder_worker' is the package of plugin 'docker')"),
        ("girder-worker-core", "(did you mean 'docker'? 'girder-worker-core' is the distribution of plugin 'docker')"),
    ],
)
def test_a_plugin_named_by_package_or_misspelt_gets_a_did_you_mean(named, hint, tmp_path):
    out = girder_worker("plugins", env={"GIRDER_WORKER_PLUGINS": named}, tmp_path=tmp_path)

    assert out.returncode == 0, out.stderr
    assert f"  error:        is not installed {hint}" in out.stdout.splitlines()
    assert out.stderr.splitlines() == [
        f"plugin {named!r} named in GIRDER_WORKER_PLUGINS is not installed {hint}; install it or remove it "
        "from GIRDER_WORKER_PLUGINS"
    ]


PROBE = """
import json, os, sys
from celery import signals

@signals.worker_ready.connect
def _ready(sender=None, **kwargs):
    loaded = sorted(m for m in ("celery.bin.celery", "prompt_toolkit", "click_repl") if m in sys.modules)
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"loaded": loaded, "pool": type(sender.pool).__module__, "app": sender.app.main}, out)
    os.kill(os.getpid(), __import__("signal").SIGTERM)
"""


def test_a_worker_starts_without_the_rest_of_celerys_command_line(tmp_path):
    """`celery worker` imports every other Celery command first (prompt_toolkit among
    them: ~95 ms of a ~400 ms start); `girder-worker` runs the worker command alone."""
    (tmp_path / "probe.py").write_text(PROBE)

    out = girder_worker(
        "-P", "solo", "-I", "probe", "--without-mingle", "--without-gossip",
        env={"PROBE_OUT": str(tmp_path / "probe.json")}, tmp_path=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "probe.json").read_text()) == {
        "loaded": [],
        "pool": "celery.concurrency.solo",
        "app": "girder_worker",
    }


def test_a_wrong_worker_option_is_celerys_usage_error(tmp_path):
    out = girder_worker("-P", "solo", "--concurency", "2", tmp_path=tmp_path)

    assert out.returncode == 2
    assert "Usage: girder-worker worker [OPTIONS]" in out.stderr
    assert "No such option '--concurency'. Did you mean '--concurrency'?" in out.stderr
    assert "ready." not in out.stdout + out.stderr


def test_an_app_with_user_options_runs_the_worker_through_celerys_command_line(tmp_path):
    import click

    from girder_worker._app import create_app
    from girder_worker._celery_internals import run_worker_command

    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}))
    try:
        app.user_options["worker"].add(click.Option(["--site-option"]))

        assert run_worker_command(app, ["-P", "solo"], "girder-worker worker") is False
    finally:
        app.close()

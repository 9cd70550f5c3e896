"""Configuration from the environment: defaults, and one clear line for each bad value."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from girder_worker._config import VARIABLES, ConfigError, read_config

from ..conftest import clean_env


def test_no_broker_means_the_embedded_broker_under_the_data_dir(tmp_path):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)})
    assert config.embedded
    assert config.settings["broker_url"] == "filesystem://"
    assert config.settings["result_backend"] == f"file://{tmp_path}/results"
    assert (tmp_path / "broker" / "queue").is_dir()
    assert (tmp_path / "broker" / "control").is_dir()


def test_json_is_the_only_content_type(tmp_path):
    settings = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}).settings
    assert settings["accept_content"] == ["json"]
    assert settings["result_accept_content"] == ["json"]
    assert settings["task_serializer"] == settings["result_serializer"] == "json"


@pytest.mark.parametrize(
    ("broker", "backend"),
    [("redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/3"), ("amqp://u:p@h//", "rpc://")],
)
def test_default_backend_follows_the_broker(broker, backend):
    config = read_config({"GIRDER_WORKER_BROKER": broker})
    assert not config.embedded
    assert config.settings["result_backend"] == backend


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GIRDER_WORKER_BROKER": "kafkaesque://x"},
            "GIRDER_WORKER_BROKER: unknown broker scheme 'kafkaesque'; use amqp://",
        ),
        (
            {"GIRDER_WORKER_BROKER": "amqp://x", "GIRDER_WORKER_BACKEND": "nope://x"},
            "GIRDER_WORKER_BACKEND: unknown result backend scheme 'nope'; use redis://",
        ),
        (
            {"GIRDER_WORKER_TASK_ALWAYS_EAGER": "maybe"},
            "GIRDER_WORKER_TASK_ALWAYS_EAGER: 'maybe' is not a boolean; use true or false",
        ),
        (
            {"GIRDER_WORKER_LOGGING_LEVEL": "loud"},
            "GIRDER_WORKER_LOGGING_LEVEL: unknown level 'loud'; use one of debug",
        ),
        (
            {"GIRDER_WORKER_CANCEL_GRACE_PERIOD": "soon"},
            "GIRDER_WORKER_CANCEL_GRACE_PERIOD: 'soon' is not a number of seconds; use a number >= 0, or never",
        ),
        ({"GIRDER_WORKER_STRICT_PLUGINS": "2"}, "GIRDER_WORKER_STRICT_PLUGINS: '2' is not a boolean"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env, message, tmp_path):
    with pytest.raises(ConfigError) as info:
        read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), **env})
    assert str(info.value).startswith(message)


def test_unusable_data_dir_names_the_variable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^GIRDER_WORKER_DATA_DIR: cannot use .*a-file/sub.*; set it to a directory"):
        read_config({"GIRDER_WORKER_DATA_DIR": str(blocker / "sub")})


def test_plugins_variable_is_a_comma_separated_set(tmp_path):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_PLUGINS": "a, b,,c"})
    assert config.plugins == {"a", "b", "c"}


def test_every_variable_is_documented_in_the_table():
    assert all(name.startswith("GIRDER_WORKER_") and text for name, text in VARIABLES.items())


def test_the_command_stops_with_one_line_on_bad_configuration(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "girder_worker", "-l", "info"],
        env=clean_env({"GIRDER_WORKER_BROKER": "kafkaesque://x"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "girder-worker: error: GIRDER_WORKER_BROKER: unknown broker scheme 'kafkaesque'; use amqp://, "
        "redis:// or another kombu transport URL, or unset it for the embedded broker"
    ]


def test_version_names_our_packages_and_celery(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "girder_worker", "--version"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert names[:4] == ["girder-worker-core", "girder-worker-utils", "gwexample", "celery"]
    assert "girder-worker-core 1.0.0" in out.stdout


def test_analysis_limits_are_read_and_checked(tmp_path):
    base = {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in")

    config = read_config(
        {
            **base,
            "GIRDER_WORKER_LOCAL_PATHS": f"{tmp_path}/link:{tmp_path}/in",
            "GIRDER_WORKER_HTTP_ALLOWED_HOSTS": "Data.Example.org, *.example.net,[::1]",
            "GIRDER_WORKER_MAX_DATA_BYTES": "1048576",
        }
    )
    assert config.local_paths == (str(tmp_path / "in"), str(tmp_path / "in"))
    assert config.http_allowed_hosts == {"data.example.org", "*.example.net", "::1"}
    assert config.max_data_bytes == 1048576
    defaults = read_config(base)
    assert (defaults.local_paths, defaults.http_allowed_hosts, defaults.max_data_bytes) == ((), None, 64 * 1024 * 1024)

    for variable, value, says in (
        ("GIRDER_WORKER_LOCAL_PATHS", "relative/dir", "'relative/dir' is not an absolute path without '..'"),
        ("GIRDER_WORKER_LOCAL_PATHS", f"{tmp_path}/in/..", "is not an absolute path without '..'"),
        ("GIRDER_WORKER_LOCAL_PATHS", f"{tmp_path}/missing", "is not a directory; create it"),
        ("GIRDER_WORKER_LOCAL_PATHS", "/", "'/' is the root directory"),
        ("GIRDER_WORKER_HTTP_ALLOWED_HOSTS", "example.org:8080", "'example.org:8080' is not a host name"),
        ("GIRDER_WORKER_HTTP_ALLOWED_HOSTS", "http://example.org", "is not a host name"),
        ("GIRDER_WORKER_MAX_DATA_BYTES", "10", "'10' is not a number of bytes >= 1024"),
    ):
        with pytest.raises(ConfigError, match=f"^{variable}: .*{re.escape(says)}"):
            read_config({**base, variable: value})

"""GIRDER_WORKER_METRICS_PORT and GIRDER_WORKER_METRICS_ADDRESS, read and checked."""

from __future__ import annotations

import pytest

from girder_worker._app import create_app
from girder_worker._config import ConfigError, read_config


def test_metrics_are_off_by_default(tmp_path):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)})

    assert config.metrics_port is None
    assert "girder-worker metrics" not in {step.label for step in create_app(config).steps["worker"]}


def test_a_port_turns_the_endpoint_on_loopback_by_default(tmp_path):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_METRICS_PORT": " 9808 "})

    assert (config.metrics_port, config.metrics_address) == (9808, "127.0.0.1")
    assert "girder-worker metrics" in {step.label for step in create_app(config).steps["worker"]}


def test_the_address_can_be_every_interface(tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_METRICS_PORT": "0"}
    config = read_config({**env, "GIRDER_WORKER_METRICS_ADDRESS": "0.0.0.0"})

    assert (config.metrics_port, config.metrics_address) == (0, "0.0.0.0")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GIRDER_WORKER_METRICS_PORT": "http"},
            "GIRDER_WORKER_METRICS_PORT: 'http' is not a TCP port number; "
            "use a number from 1 to 65535 (0: any free port), or unset it to serve no metrics",
        ),
        (
            {"GIRDER_WORKER_METRICS_PORT": "70000"},
            "GIRDER_WORKER_METRICS_PORT: '70000' is not a TCP port number; "
            "use a number from 1 to 65535 (0: any free port), or unset it to serve no metrics",
        ),
        (
            {"GIRDER_WORKER_METRICS_PORT": "9808", "GIRDER_WORKER_METRICS_ADDRESS": "http://0.0.0.0/"},
            "GIRDER_WORKER_METRICS_ADDRESS: 'http://0.0.0.0/' is not an address to listen on; "
            "use an IP address or host name, e.g. 127.0.0.1 or 0.0.0.0",
        ),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env, message, tmp_path):
    with pytest.raises(ConfigError) as info:
        read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), **env})

    assert str(info.value) == message

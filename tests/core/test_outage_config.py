"""The outage settings read_config gives every app, and GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS."""

from __future__ import annotations

import json

import pytest

from girder_worker._config import ConfigError, read_config

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"


def test_workers_reconnect_forever_and_results_retry():
    settings = read_config({"GIRDER_WORKER_BROKER": REDIS}).settings

    assert settings["broker_connection_max_retries"] is None
    assert settings["result_backend_always_retry"] is True
    assert settings["result_backend_max_retries"] == 25


def test_rabbitmq_publishes_are_confirmed_and_redis_ones_need_no_confirm():
    # Confirmed through a window by girder-worker's AMQP transport (tests/compat/test_publish_confirms.py),
    # not by kombu's confirm_publish option, which makes each publish wait.
    settings = read_config({"GIRDER_WORKER_BROKER": RABBITMQ}).settings
    assert settings["broker_transport"] == "girder_worker.broker._rabbitmq:Transport"
    assert settings["broker_transport_options"] == {"connect_retries_timeout": 10, "girder_worker_publish_window": 64}
    assert read_config({"GIRDER_WORKER_BROKER": REDIS}).settings["broker_transport_options"] == {
        "connect_retries_timeout": 10
    }


def test_the_publish_window_is_a_whole_number():
    env = {"GIRDER_WORKER_BROKER": RABBITMQ, "GIRDER_WORKER_PUBLISH_WINDOW": "1"}
    assert read_config(env).settings["broker_transport_options"]["girder_worker_publish_window"] == 1
    amqps = read_config({"GIRDER_WORKER_BROKER": "amqps://guest:guest@rabbitmq:5671//"}).settings
    assert amqps["broker_transport"] == "girder_worker.broker._rabbitmq:SSLTransport"

    with pytest.raises(ConfigError) as raised:
        read_config({**env, "GIRDER_WORKER_PUBLISH_WINDOW": "0"})
    assert str(raised.value) == (
        "GIRDER_WORKER_PUBLISH_WINDOW: '0' is not a whole number >= 1; use 1 to make every publish wait for "
        "RabbitMQ's confirm, or more (default 64)"
    )


def test_transport_options_from_the_environment_win():
    env = {
        "GIRDER_WORKER_BROKER": RABBITMQ,
        "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": '{"confirm_publish": false, "visibility_timeout": 30}',
    }

    options = read_config(env).settings["broker_transport_options"]

    assert options == {
        "connect_retries_timeout": 10,
        "confirm_publish": False,
        "visibility_timeout": 30,
        "girder_worker_publish_window": 64,  # unused: confirm_publish set either way leaves confirms to kombu
    }


def test_the_embedded_broker_keeps_its_folders_under_extra_options(tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": '{"polling_interval": 1}'}

    options = read_config(env).settings["broker_transport_options"]

    assert options["polling_interval"] == 1
    assert options["data_folder_in"] == str(tmp_path / "broker" / "queue")


@pytest.mark.parametrize("text", ["[1, 2]", "visibility_timeout=30", '"30"'])
def test_transport_options_that_are_no_json_object_name_the_variable(text):
    env = {"GIRDER_WORKER_BROKER": REDIS, "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": text}

    with pytest.raises(ConfigError, match=r"^GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS: .* is not a JSON object; use"):
        read_config(env)


@pytest.mark.parametrize("window", ["64", 0, [1], True])
def test_a_publish_window_in_the_transport_options_is_checked_at_start(window):
    env = {
        "GIRDER_WORKER_BROKER": RABBITMQ,
        "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": json.dumps({"girder_worker_publish_window": window}),
    }

    with pytest.raises(ConfigError) as raised:
        read_config(env)
    assert str(raised.value) == (
        f"GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS: girder_worker_publish_window is {window!r}, not a whole number "
        ">= 1; leave it out and set GIRDER_WORKER_PUBLISH_WINDOW instead"
    )

"""The Celery tasks girder_worker.run, convert and validators on an eager app."""

from __future__ import annotations

import logging

import pytest

from girder_worker._app import create_app
from girder_worker._config import ConfigError, read_config
from girder_worker.analysis import ModeNotAllowed

SCRIPT = {
    "mode": "python",
    "script": "y = x * 2",
    "inputs": [{"name": "x", "type": "integer", "format": "integer"}],
    "outputs": [{"name": "y", "type": "integer", "format": "integer"}],
}


@pytest.fixture
def eager_app(tmp_path):
    apps = []

    def make(**env):
        app = create_app(
            read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true", **env})
        )
        app.loader.import_default_modules()  # what a worker does at start
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_the_app_registers_the_three_builtin_tasks(eager_app):
    app = eager_app()

    assert {"girder_worker.run", "girder_worker.convert", "girder_worker.validators"} <= set(app.tasks)


def test_convert_and_validators_as_tasks(eager_app):
    app = eager_app()

    converted = app.tasks["girder_worker.convert"].delay(
        "table", {"format": "csv", "data": "a\n1\n"}, {"format": "rows"}
    )
    found = app.tasks["girder_worker.validators"].delay("integer", None)

    assert converted.get() == {"format": "rows", "data": {"fields": ["a"], "rows": [{"a": 1}]}}
    assert [v["format"] for v in found.get()] == ["integer", "json"]


def test_python_mode_follows_the_workers_setting(eager_app):
    refused = eager_app().tasks["girder_worker.run"].delay(SCRIPT, {"x": {"format": "integer", "data": 4}})
    allowed = eager_app(GIRDER_WORKER_ALLOW_PYTHON_MODE="true").tasks["girder_worker.run"]

    with pytest.raises(ModeNotAllowed, match="set GIRDER_WORKER_ALLOW_PYTHON_MODE=true"):
        refused.get()
    assert allowed.delay(SCRIPT, {"x": {"format": "integer", "data": 4}}).get() == {
        "y": {"format": "integer", "data": 8}
    }


def test_the_originals_extra_keywords_are_accepted_and_unknown_ones_logged(eager_app, caplog):
    run = eager_app(GIRDER_WORKER_ALLOW_PYTHON_MODE="yes").tasks["girder_worker.run"]
    inputs = {"x": {"format": "json", "data": "5"}}

    with caplog.at_level(logging.WARNING, logger="girder_worker.analysis"):
        result = run.delay(SCRIPT, inputs, jobInfo={}, cleanup=True, write_script=1, colour="blue").get()

    assert result == {"y": {"format": "integer", "data": 10}}
    assert [r.getMessage() for r in caplog.records] == ["girder_worker.run ignores the keyword argument(s) colour"]


def test_the_setting_is_off_by_default_and_checked(tmp_path):
    assert read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}).allow_python_mode is False
    with pytest.raises(ConfigError, match=r"^GIRDER_WORKER_ALLOW_PYTHON_MODE: 'maybe' is not a boolean; use true"):
        read_config({"GIRDER_WORKER_ALLOW_PYTHON_MODE": "maybe"})

"""app.config and app.conf take Celery setting names in either case."""

from __future__ import annotations

import pytest

from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker._settings import UnknownSettingWarning


@pytest.fixture
def app(tmp_path):
    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}))
    yield app
    app.close()


def test_config_is_conf(app):
    assert app.config is app.conf


def test_the_plugin_guides_upper_case_update_sets_the_setting(app):
    app.config.update({"TASK_TIME_LIMIT": 300})
    assert app.conf.task_time_limit == 300


def test_upper_case_item_assignment_and_old_names_work(app):
    app.conf["TASK_SOFT_TIME_LIMIT"] = 120
    app.conf.update(CELERYD_PREFETCH_MULTIPLIER=1)
    app.conf.setdefault("WORKER_MAX_TASKS_PER_CHILD", 10)
    assert app.conf.task_soft_time_limit == 120
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_max_tasks_per_child == 10


def test_the_setting_applies_after_the_app_is_configured(app):
    assert app.conf.task_serializer == "json"  # finalizes the configuration
    app.config.update({"TASK_TIME_LIMIT": 42})
    assert app.conf.task_time_limit == 42


def test_unknown_upper_case_key_is_named_in_a_warning(app):
    with pytest.warns(UnknownSettingWarning, match=r"'TASK_TIMELIMIT' is not a Celery setting.*'task_time_limit'"):
        app.config.update({"TASK_TIMELIMIT": 300})
    assert app.conf.task_time_limit is None


def test_lower_case_custom_keys_are_stored_silently(app):
    app.conf.update({"my_plugin_option": 1})
    assert app.conf.my_plugin_option == 1

"""GIRDER_WORKER_PREFETCH: fair dispatch by default, Celery's prefetch multiplier on request."""

from __future__ import annotations

import pytest

from girder_worker._app import create_app
from girder_worker._config import ConfigError, read_config


@pytest.mark.parametrize("value", [None, "", "off", " OFF "])
def test_fair_dispatch_is_the_default(value, tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["GIRDER_WORKER_PREFETCH"] = value

    config = read_config(env)

    assert config.prefetch_multiplier is None
    assert "worker_prefetch_multiplier" not in config.settings
    assert config.settings["worker_enable_prefetch_count_reduction"] is False


def test_a_number_is_celerys_prefetch_multiplier(tmp_path):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_PREFETCH": "4"})
    app = create_app(config)
    try:
        assert config.prefetch_multiplier == 4
        assert app.conf.worker_prefetch_multiplier == 4
        assert app.conf.worker_enable_prefetch_count_reduction is True
    finally:
        app.close()


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "on", "unlimited"])
def test_anything_else_is_one_line_naming_the_fix(value, tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path), "GIRDER_WORKER_PREFETCH": value}

    with pytest.raises(ConfigError) as info:
        read_config(env)

    assert str(info.value) == (
        f"GIRDER_WORKER_PREFETCH: {value!r} is neither off nor a whole number >= 1; "
        "use off to take a task only for a free process, or N to reserve N tasks per process"
    )

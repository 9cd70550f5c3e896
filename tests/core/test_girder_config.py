"""The Girder reporting variables: defaults, values, and one-line errors."""

from __future__ import annotations

import pytest

from girder_worker._config import ConfigError, read_config
from girder_worker.girder._rest import ReportSettings


def settings(tmp_path, **env):
    config = read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), **env})
    return ReportSettings.for_app(type("App", (), {"girder_worker_config": config})())


def test_defaults(tmp_path):
    assert settings(tmp_path) == ReportSettings(interval=0.5, retry_seconds=600.0, log_limit=1_000_000, api_url=None)


def test_values(tmp_path):
    got = settings(
        tmp_path,
        GIRDER_WORKER_API_URL="https://girder.example.org/api/v1/",
        GIRDER_WORKER_REPORT_INTERVAL="2",
        GIRDER_WORKER_REPORT_RETRY_SECONDS="30",
        GIRDER_WORKER_JOB_LOG_LIMIT="50000",
    )
    assert (got.api_url, got.interval, got.retry_seconds, got.log_limit) == (
        "https://girder.example.org/api/v1",
        2.0,
        30.0,
        50_000,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GIRDER_WORKER_API_URL", "girder:8080", "GIRDER_WORKER_API_URL: 'girder:8080' is not an http:// or https://"),
        ("GIRDER_WORKER_REPORT_INTERVAL", "soon", "GIRDER_WORKER_REPORT_INTERVAL: 'soon' is not a number of seconds"),
        ("GIRDER_WORKER_REPORT_RETRY_SECONDS", "-1", "'-1' is not a number of seconds >= 0; use a number >= 0"),
        ("GIRDER_WORKER_JOB_LOG_LIMIT", "100", "'100' is not a number of characters >= 10000"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path), name: value})


def test_the_api_url_replaces_girders_prefix_only():
    from girder_worker.girder._rest import rewrite_api_url

    url = "http://localhost:8080/api/v1/job/abc"
    assert (
        rewrite_api_url(url, "http://localhost:8080/api/v1", "http://girder/api/v1") == "http://girder/api/v1/job/abc"
    )
    assert rewrite_api_url(url, "http://other/api/v1", "http://girder/api/v1") == url
    assert rewrite_api_url(url, None, "http://girder/api/v1") == url
    assert rewrite_api_url("http://localhost:8080/api/v10/job/a", "http://localhost:8080/api/v1", "http://g") == (
        "http://localhost:8080/api/v10/job/a"
    )

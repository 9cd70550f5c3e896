"""The documentation builds without a single warning."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import ROOT

DOCS = ROOT / "docs"


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"

    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "girder_worker_plugins" in (out / "plugins.html").read_text()
    # Cross-references reach Celery's and Python's documentation through the inventories
    # in docs/_inventories, with no network.
    celery, python = "https://docs.celeryq.dev/en/stable", "https://docs.python.org/3"
    deployment = (out / "deployment.html").read_text()
    assert f'href="{celery}/userguide/configuration.html#std-setting-task_routes"' in deployment
    assert f'href="{celery}/userguide/routing.html"' in deployment
    testing = (out / "testing.html").read_text()
    assert f'href="{python}/library/exceptions.html#TimeoutError"' in testing
    assert f'href="{celery}/reference/celery.result.html#celery.result.AsyncResult.get"' in testing
    # The theme's search box, and the index it searches.
    assert 'role="search"' in testing
    assert (out / "searchindex.js").is_file()

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

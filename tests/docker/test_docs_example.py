"""The Docker page's whole example runs against a local image and prints what the page shows."""

from __future__ import annotations

import re
import subprocess
import sys

from ..conftest import ROOT, clean_env

DOCS = ROOT / "docs"


def test_the_docker_page_example_prints_what_the_page_shows(busybox, tmp_path):
    result = subprocess.run(
        [sys.executable, str(DOCS / "examples" / "docker_example.py"), busybox],
        env=clean_env({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), "TMPDIR": str(tmp_path)}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    page = (DOCS / "docker.rst").read_text()
    shown = re.search(r"prints:\n\n\.\. code-block:: text\n\n((?:   .*\n)+)", page)
    assert shown is not None
    assert result.stdout == "".join(line[3:] + "\n" for line in shown.group(1).splitlines())

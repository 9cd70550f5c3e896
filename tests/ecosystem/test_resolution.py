"""What pip installs for the ecosystem's own install commands when our wheels are offered.

Each test asks the newest pip (the ecosystem venv's) for a dry-run install with
``--find-links`` to the wheels built from this working tree, and the package index for
the rest, and reads what pip would install: the packaging story of
packages/girder-worker/README.md.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..conftest import clean_env
from .test_packages import CORE_VERSION, SHIM_VERSION, UTILS_VERSION
from .venvs import venv_python, wheels_folder

# The first test of a session may build a cached venv from the package index (minutes).
pytestmark = pytest.mark.timeout(900)


def _dry_run(venv: Path, tmp_path: Path, *requirements: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``pip install --dry-run --find-links <our wheels> REQUIREMENTS``: the output and what it would install."""
    report = tmp_path / "report.json"
    out = subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--dry-run",
         "--ignore-installed", "--report", str(report), "--find-links", str(wheels_folder(venv)), *requirements],
        env=clean_env(),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    installs = {}
    if report.exists():
        installs = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    return out, installs


def test_slicer_cli_web_worker_extra_installs_ours(ecosystem_venv, tmp_path):
    out, installs = _dry_run(ecosystem_venv, tmp_path, "girder-slicer-cli-web[worker]==5.0.21")
    assert out.returncode == 0, out.stdout + out.stderr
    assert {name: installs.get(name) for name in ("girder-worker", "girder-worker-core", "girder-worker-utils")} == {
        "girder-worker": SHIM_VERSION,
        "girder-worker-core": CORE_VERSION,
        "girder-worker-utils": UTILS_VERSION,
    }


def test_large_image_tasks_installs_our_utils(ecosystem_venv, tmp_path):
    # girder-worker-utils<5,>=0.8.5: ours only because it is a final release, not a .devN.
    out, installs = _dry_run(ecosystem_venv, tmp_path, "large-image-tasks==1.35.6")
    assert out.returncode == 0, out.stdout + out.stderr
    assert installs.get("girder-worker-utils") == UTILS_VERSION


def test_large_image_tasks_worker_extra_conflicts_with_slicer_cli_web_5(ecosystem_venv, tmp_path):
    # large-image-tasks 1.35's worker extra is for Girder 4's girder-worker; the README says
    # what to install instead.
    out, _ = _dry_run(
        ecosystem_venv, tmp_path, "large-image-tasks[worker]==1.35.6", "girder-slicer-cli-web[worker]==5.0.21"
    )
    assert out.returncode != 0
    assert "ResolutionImpossible" in out.stderr
    assert 'girder-slicer-cli-web[worker] 5.0.21 depends on girder-worker>=5.0.0; extra == "worker"' in out.stdout
    assert 'large-image-tasks[worker] 1.35.6 depends on girder-worker<5 and >=0.6.0; extra == "worker"' in out.stdout

"""Fixtures for running the documentation's examples the way a reader would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from ..conftest import clean_env

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run ``python ARGS...`` from a fresh working directory, as a reader would.

    The developer's GIRDER_WORKER_* variables are left out; the embedded broker
    lives in the test's own data directory, and whatever an example puts in the
    temporary directory goes under tmp_path. ``env`` adds variables.
    """
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    data_dir = tmp_path / "data"
    base = clean_env({"GIRDER_WORKER_DATA_DIR": str(data_dir), "TMPDIR": str(tmp_path)})

    def run_python(
        *args: str, env: Mapping[str, str] | None = None, merge_stderr: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env={**base, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )

    return run_python


@pytest.fixture
def broken_plugin(tmp_path: Path) -> dict[str, str]:
    """Environment variables under which an installed plugin fails to import.

    It is the ``thumbnails`` plugin of a ``gw-thumbnails 0.3.0`` distribution whose
    module needs ``large_image``, which is missing; importlib.metadata finds its
    entry point through the .dist-info directory, as it would for an installed wheel.
    """
    site = tmp_path / "site"
    dist_info = site / "gw_thumbnails-0.3.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gw-thumbnails\nVersion: 0.3.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[girder_worker_plugins]\nthumbnails = gw_thumbnails:ThumbnailsPlugin\n"
    )
    # Raised rather than imported, so the test does not depend on what is installed.
    (site / "gw_thumbnails.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'large_image'\", name='large_image')\n"
    )
    return {"PYTHONPATH": str(site)}

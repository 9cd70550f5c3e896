"""Fixtures for running the documentation's examples the way a reader would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def clean_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """The test's environment without the developer's GIRDER_WORKER_* settings.

    The embedded broker lives in the test's own data directory, and anything an
    example puts in the temporary directory goes under tmp_path.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}
    env["GIRDER_WORKER_DATA_DIR"] = str(data_dir)
    env["TMPDIR"] = str(tmp_path)
    return env


@pytest.fixture
def run(tmp_path: Path, clean_env: dict[str, str]) -> Run:
    """Run ``python ARGS...`` from a fresh working directory, as a reader would."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def run_python(*args: str, env: Mapping[str, str] | None = None, merge_stderr: bool = False):
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env={**clean_env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )

    return run_python


@pytest.fixture
def broken_plugin(tmp_path: Path) -> str:
    """A directory for PYTHONPATH holding an installed plugin that fails to import.

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
    return str(site)

"""The checks a reviewer would run: types (mypy) and lint/format (ruff), as hatch.toml defines them."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

SOURCES = ["packages/girder-worker-utils/src", "packages/girder-worker-core/src"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_mypy_finds_no_type_errors():
    result = run("mypy", "--config-file", "mypy.ini", *SOURCES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint_and_format_are_clean():
    lint = run("ruff", "check", "packages", "tests", "docs", "scripts", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "packages", "tests", "docs", "scripts", "bench")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr

"""Cached virtualenvs that hold the Girder ecosystem's real packages from the package index.

Two venvs live under ``<repo>/.cache`` (the variables ``GW_ECOSYSTEM_VENV`` and
``GW_ORIGINAL_VENV`` move them):

``ecosystem-venv``
    our wheels, built from the working tree (and kept in ``ecosystem-venv-wheels``),
    installed the way a site installs the ecosystem (:data:`ECOSYSTEM_REQUIREMENTS`, with
    our wheels offered by ``--find-links``).
``original-gw-venv``
    the original girder-worker 5.0.21 from the package index and a tiny plugin of its own
    style (``original-plugin/``) that registers the same task names as gwexample.

A venv is reused when its marker file records a finished install of the same inputs:
the requirement lines, the interpreter and a digest of the local packages' files. When
only the source files of our packages changed, the ecosystem venv reinstalls our freshly
built wheels (a few seconds) instead of being built again; a change to a
``pyproject.toml`` (our dependencies) or to the requirement lines rebuilds it. An
exclusive ``fcntl`` lock next to the venv makes concurrent pytest sessions wait for one
build. A build that fails FAILS the test with the tail of pip's output, never skips.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PACKAGES = REPO_ROOT / "packages"
ORIGINAL_PLUGIN = HERE / "original-plugin"

#: Our distributions that a site installs (gwexample is not one of them).
OUR_PACKAGES = ("girder-worker-utils", "girder-worker-core", "girder-worker")

#: What a worker of a Girder 5 site with large_image and slicer_cli_web installs (see
#: packages/girder-worker/README.md). large_image's ``large-image-converter[sources]``
#: needs GDAL wheels from large_image's own wheel index, which this machine cannot
#: reach, so the converter comes without its optional tile sources.
ECOSYSTEM_REQUIREMENTS = (
    "girder-worker[worker]",
    "girder-slicer-cli-web[worker]==5.0.21",
    "large-image-tasks==1.35.6",
    "large-image-converter==1.35.6",
)

#: The original girder-worker as a Girder 5 site has it, and the jsonpickle it encodes with.
ORIGINAL_REQUIREMENTS = ("girder-worker==5.0.21", "jsonpickle==4.1.4")

_MARKER = ".gw-test-inputs.json"
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "dist", "build"}


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def tree_digest(roots: Iterable[Path], names: Sequence[str] | None = None) -> str:
    """A digest of the files under ``roots`` (only those called ``names``, when given)."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or _SKIP_PARTS & set(path.relative_to(root).parts):
                continue
            if path.suffix in (".pyc", ".pyo") or ".egg-info" in str(path):
                continue
            if names is not None and path.name not in names:
                continue
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _run(cmd: list[str], what: str, timeout: float = 1200) -> None:
    try:
        proc = subprocess.run(
            cmd,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} timed out after {timeout}s: {' '.join(cmd)}\n{exc}", pytrace=False)
    if proc.returncode != 0:
        # This machine's pip.conf names index folders that may not exist; pip warns
        # about each of them. Drop that noise from the report.
        output = "\n".join(
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if not (line.startswith("WARNING: Location '") and line.endswith("' is ignored"))
        )
        pytest.fail(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{_tail(output)}", pytrace=False)


def _pip(venv: Path, *args: str) -> list[str]:
    return [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check", *args]


def _read_marker(venv: Path) -> dict:
    try:
        found = json.loads((venv / _MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return found if venv_python(venv).exists() else {}


def _locked(venv: Path) -> IO[str]:
    """The lock file next to ``venv``, opened; ``fcntl.flock`` it for the whole build."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    return open(venv.parent / f"{venv.name}.lock", "w")


def wheels_folder(venv: Path) -> Path:
    """Where the wheels installed in ``venv`` are kept, for the tests that resolve with them."""
    return venv.parent / f"{venv.name}-wheels"


def build_wheels(packages: Iterable[Path], out: Path) -> list[Path]:
    """Build a wheel of each package folder into ``out``; return their paths."""
    # The test environments have hatchling; elsewhere pip fetches it into an isolated build.
    flags = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    for package in packages:
        _run(
            [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps", *flags,
             "-w", str(out), str(package)],
            f"building the wheel of {package.name}",
        )  # fmt: skip
    return sorted(out.glob("*.whl"))


def _create(venv: Path, base_python: str) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    _run([base_python, "-m", "venv", str(venv)], f"creating {venv}")
    # The newest pip: the resolver is what a site runs today.
    _run(_pip(venv, "install", "-q", "-U", "pip"), f"upgrading pip in {venv}")


def ensure_ecosystem_venv() -> Path:
    """Return the ecosystem venv, building it or refreshing our wheels in it first if needed."""
    venv = Path(os.environ.get("GW_ECOSYSTEM_VENV") or REPO_ROOT / ".cache" / "ecosystem-venv")
    folders = [PACKAGES / name for name in OUR_PACKAGES]
    inputs = {
        "requirements": list(ECOSYSTEM_REQUIREMENTS),
        "python": str(Path(sys.executable).resolve()),
        # Dependencies and versions: a change here means resolving again, from scratch.
        "metadata": tree_digest(folders, names=["pyproject.toml", "__about__.py"]),
    }
    sources = tree_digest(folders)

    def current(found: dict) -> bool:
        wheels = list(wheels_folder(venv).glob("*.whl"))
        return found.get("inputs") == inputs and found.get("sources") == sources and len(wheels) == len(folders)

    if current(_read_marker(venv)):
        return venv
    with _locked(venv) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _read_marker(venv)
        if current(found):  # another session built it meanwhile
            return venv
        started = time.monotonic()
        wheels_dir = wheels_folder(venv)
        if wheels_dir.exists():
            shutil.rmtree(wheels_dir)
        wheels = build_wheels(folders, wheels_dir)
        if found.get("inputs") == inputs:
            # Same dependencies: put this working tree's code in place of the old.
            _run(
                _pip(venv, "install", "-q", "--no-deps", "--force-reinstall", *map(str, wheels)),
                f"reinstalling our wheels in {venv}",
            )
            how = "refreshed our wheels in"
        else:
            _create(venv, sys.executable)
            _run(
                _pip(venv, "install", "-q", "--find-links", str(wheels_dir), *ECOSYSTEM_REQUIREMENTS),
                f"installing {' '.join(ECOSYSTEM_REQUIREMENTS)} with our wheels into {venv}",
            )
            how = "built"
        (venv / _MARKER).write_text(json.dumps({"inputs": inputs, "sources": sources}, indent=1) + "\n")
        sys.stderr.write(f"\necosystem: {how} {venv} in {time.monotonic() - started:.1f}s\n")
    return venv


def ensure_original_venv() -> Path:
    """Return the venv of the original girder-worker 5.0.21 and the test plugin, building it if needed."""
    venv = Path(os.environ.get("GW_ORIGINAL_VENV") or REPO_ROOT / ".cache" / "original-gw-venv")
    inputs = {
        "requirements": list(ORIGINAL_REQUIREMENTS),
        "python": str(Path(sys.executable).resolve()),
        "plugin": tree_digest([ORIGINAL_PLUGIN]),
    }
    if _read_marker(venv).get("inputs") == inputs:
        return venv
    with _locked(venv) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _read_marker(venv).get("inputs") == inputs:
            return venv
        started = time.monotonic()
        _create(venv, sys.executable)
        _run(
            _pip(venv, "install", "-q", *ORIGINAL_REQUIREMENTS, str(ORIGINAL_PLUGIN)),
            f"installing {' '.join(ORIGINAL_REQUIREMENTS)} and the test plugin into {venv}",
        )
        (venv / _MARKER).write_text(json.dumps({"inputs": inputs}, indent=1) + "\n")
        sys.stderr.write(f"\necosystem: built {venv} in {time.monotonic() - started:.1f}s\n")
    return venv

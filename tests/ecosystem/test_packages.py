"""Our packages installed beside the real large-image-tasks and girder-slicer-cli-web.

The venv is built the way a Girder 5 site installs its worker (``ECOSYSTEM_REQUIREMENTS``
in venvs.py), with our wheels offered by ``--find-links`` and nothing of ours pinned:
the installer has to choose our girder-worker over the original's on the index.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import clean_env
from .venvs import PACKAGES, venv_python

# The first test of a session may build a cached venv from the package index (minutes).
pytestmark = pytest.mark.timeout(900)


def _our_version(path: Path) -> str:
    """The version in an ``__about__.py`` or a static ``pyproject.toml`` (tomllib is 3.11+)."""
    match = re.search(r'^(?:__version__|version) = "([^"]+)"', path.read_text(), re.MULTILINE)
    assert match, path
    return match.group(1)


CORE_VERSION = _our_version(PACKAGES / "girder-worker-core/src/girder_worker/__about__.py")
UTILS_VERSION = _our_version(PACKAGES / "girder-worker-utils/src/girder_worker_utils/__about__.py")
SHIM_VERSION = _our_version(PACKAGES / "girder-worker/pyproject.toml")


def _run(venv: Path, *cmd: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd],
        env=clean_env({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def plugins_output(ecosystem_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What ``girder-worker plugins`` prints in the ecosystem venv."""
    out = _run(ecosystem_venv, str(ecosystem_venv / "bin" / "girder-worker"), "plugins",
               tmp_path=tmp_path_factory.mktemp("plugins"))  # fmt: skip
    return f"{out.stdout}\n--- stderr\n{out.stderr}"


def test_pip_check_passes(ecosystem_venv, tmp_path):
    out = _run(ecosystem_venv, str(venv_python(ecosystem_venv)), "-m", "pip", "check", tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No broken requirements found." in out.stdout


def test_girder_worker_is_ours_and_the_original_is_not_installed(ecosystem_venv, tmp_path):
    code = (
        "import json, importlib.metadata as m, girder_worker\n"
        "print(json.dumps({\n"
        "  'file': girder_worker.__file__,\n"
        "  'versions': {d: m.version(d) for d in\n"
        "     ('girder-worker', 'girder-worker-core', 'girder-worker-utils', 'large-image-tasks',\n"
        "      'girder-slicer-cli-web')},\n"
        "  'shim_files': [str(f) for f in m.files('girder-worker')],\n"
        "  'core_files': [str(f) for f in m.files('girder-worker-core')],\n"
        "}))\n"
    )
    out = _run(ecosystem_venv, str(venv_python(ecosystem_venv)), "-c", code, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["versions"] == {
        "girder-worker": SHIM_VERSION,
        "girder-worker-core": CORE_VERSION,
        "girder-worker-utils": UTILS_VERSION,
        "large-image-tasks": "1.35.6",
        "girder-slicer-cli-web": "5.0.21",
    }
    # girder_worker is core's; the installed girder-worker is ours, without a file of code.
    assert "girder_worker/__init__.py" in found["core_files"]
    assert Path(found["file"]).resolve().is_relative_to(ecosystem_venv.resolve())
    assert not [f for f in found["shim_files"] if f.startswith("girder_worker/")]

    version = _run(ecosystem_venv, str(ecosystem_venv / "bin" / "girder-worker"), "--version", tmp_path=tmp_path)
    assert f"girder-worker-core {CORE_VERSION}" in version.stdout, version.stdout + version.stderr


def test_plugins_command_loads_large_image_tasks(plugins_output):
    assert (
        "large_image_tasks\n"
        "  entry point:  large_image_tasks = large_image_tasks:LargeImageTasks\n"
        "  distribution: large-image-tasks 1.35.6\n"
        "  modules:      large_image_tasks.tasks\n"
        "  tasks:        large_image_tasks.tasks.create_tiff\n"
    ) in plugins_output, plugins_output


def test_plugins_command_loads_slicer_cli_web(plugins_output):
    # Its direct_docker_run subclasses girder_worker.docker.tasks.DockerTask (docker_run).
    assert (
        "slicer_cli_web\n"
        "  entry point:  slicer_cli_web = slicer_cli_web.girder_worker_plugin:SlicerCLIWebWorkerPlugin\n"
        "  distribution: girder-slicer-cli-web 5.0.21\n"
        "  modules:      slicer_cli_web.girder_worker_plugin.direct_docker_run, slicer_cli_web.image_job\n"
        "  tasks:        slicer_cli_web.girder_worker_plugin.direct_docker_run.run,"
        " slicer_cli_web.image_job.ingest_from_docker\n"
    ) in plugins_output, plugins_output

"""The real girder-slicer-cli-web 5.0.21's worker side runs on our docker_run.

Its package (with ctk-cli, without dependencies) is installed from the package
index into ``.cache/slicer-cli-web`` once; the worker imports its task module.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from ..conftest import ROOT

SLICER = ROOT / ".cache" / "slicer-cli-web-5.0.21"
TASK = "slicer_cli_web.girder_worker_plugin.direct_docker_run.run"


@pytest.fixture(scope="module")
def slicer_path() -> Path:
    if not (SLICER / "slicer_cli_web").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(SLICER),
             "girder-slicer-cli-web==5.0.21", "ctk-cli==1.5"],
            check=True,
        )  # fmt: skip
    return SLICER


def test_its_worker_modules_import_against_ours(slicer_path):
    code = (
        "from slicer_cli_web.girder_worker_plugin import direct_docker_run as d, cli_progress as c\n"
        "from girder_worker.docker.tasks import DockerTask\n"
        "assert issubclass(d.DirectDockerTask, DockerTask)\n"
        "assert issubclass(d.DirectGirderFileIdToVolume, __import__('girder_worker.docker.transforms.girder', "
        "fromlist=['x']).GirderFileIdToVolume)\n"
        "print(d.run.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(slicer_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == TASK + "\n"


@pytest.fixture
def gw_worker_env(gw_worker_env: Mapping[str, str], slicer_path: Path) -> Mapping[str, str]:
    return {**gw_worker_env, "PYTHONPATH": f"{ROOT}:{slicer_path}", "GIRDER_WORKER_PLUGINS": "docker"}


@pytest.fixture
def gw_worker_args() -> Sequence[str]:
    return ("-P", "threads", "-c", "2", "-I", "slicer_cli_web.girder_worker_plugin.direct_docker_run")


@pytest.mark.usefixtures("no_leftovers")
def test_its_run_task_reports_cli_progress_to_the_job(gw_worker, busybox):
    script = (
        "echo '<filter-start><filter-name>Blur</filter-name></filter-start>'; "
        "echo '<filter-progress>0.5</filter-progress>'; echo plain output; "
        "echo '<filter-progress>1</filter-progress>'"
    )
    result = gw_worker.delay(TASK, image=busybox, pull_image="if-not-present", container_args=["sh", "-c", script])

    result.get(timeout=60)
    job = gw_worker.job(result)
    assert "plain output" in job.log
    assert "<filter-progress>" not in job.log
    assert job.progress  # its writer reports the last value of what arrives at once
    assert (job.progress[-1].current, job.progress[-1].total, job.progress[-1].message) == (1.0, 1.0, "Blur")

"""The real girder-slicer-cli-web 5.0.21 runs its CLIs on our docker_run.

First its worker side alone: its package (with ctk-cli, without dependencies) is
installed from the package index into ``.cache/slicer-cli-web-5.0.21`` once, and
the worker imports its task module. Then end to end through Girder, as a Digital
Slide Archive site runs it (see the section below and docs/docker.rst).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from girder_client import GirderClient

from ..conftest import ROOT, wait_for
from ..integration.girder_jobs import CANCELED, ERROR, RUNNING, SUCCESS, log_of
from ..integration.girder_server import GirderServer, ensure_girder_venv, venv_worker
from ..integration.private_brokers import PrivateRedis, sweep_orphans
from ..integration.test_builtin_girder import girder_client
from . import images
from .conftest import docker_ps

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


# --------------------------------------------------------------------------- through Girder
#
# What a Digital Slide Archive site runs: one venv with Girder 5, girder-slicer-cli-web (its
# Girder plugin) and our girder-worker[worker]; the Girder server and the worker share a
# broker (a private Redis here, so no other test's worker takes these tasks from the
# default queue). An admin ingests a local CLI image through slicer_cli_web's REST API (its
# ingest job runs on the worker, which runs ``--list_cli`` and ``CopyUpper --xml``); a user
# runs the CLI through its generated ``/slicer_cli_web/<image>/CopyUpper/run`` route.

SLICER_REQUIREMENTS = ("girder-worker[worker]", "girder-slicer-cli-web[girder,worker]==5.0.21")
#: The worker's cancel grace period in these tests, seconds: a cancelled container gets
#: SIGTERM, then SIGKILL after half of it (see girder_worker.docker._run.stop_timeout).
GRACE = 8.0
#: The first of these tests builds the Girder venv (a few minutes on a cold cache).
builds_venv = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def slicer_python() -> Path:
    return ensure_girder_venv(SLICER_REQUIREMENTS, name="girder-slicer-cli-web-venv")


@pytest.fixture(scope="module")
def slicer_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sweep_orphans()
    redis = PrivateRedis(tmp_path_factory.mktemp("slicer-redis"))
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def slicer_girder(girder_server_factory, slicer_python: Path, slicer_broker: str) -> Iterator[GirderServer]:
    """Girder with slicer_cli_web's plugin, publishing to the private broker; stopped before it."""
    server = girder_server_factory(slicer_broker, python=slicer_python)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slicer_worker(
    slicer_python: Path, slicer_broker: str, slicer_girder: GirderServer, docker_engine: None, tmp_path_factory
) -> Iterator[Path]:
    """The site's ``girder-worker`` on the private broker; yields its log."""
    log = tmp_path_factory.mktemp("slicer-worker") / "worker.log"
    env = {
        "GIRDER_WORKER_BROKER": slicer_broker,
        "GIRDER_WORKER_CANCEL_GRACE_PERIOD": str(GRACE),
        "GIRDER_WORKER_DOCKER_RUN_OPTIONS": json.dumps({"network_mode": "none"}),
        # Girder's "direct path" mounts assetstore files into the CLI's container.
        "GIRDER_WORKER_DOCKER_HOST_PATHS": f"{assetstore(slicer_girder)}=ro",
    }
    args = ("-P", "threads", "-c", "2", "-n", f"slicer-{uuid.uuid4().hex[:8]}@%h")
    with venv_worker(slicer_python, env, log, args):
        yield log


def assetstore(girder: GirderServer) -> Path:
    """The filesystem assetstore's directory (``girder_client`` creates it there)."""
    return girder.run_dir / "assetstore"


@pytest.fixture(scope="module")
def cli_image(docker_engine: None) -> str:
    return images.slicer_cli_image()


@pytest.fixture(scope="module")
def ingested(slicer_girder: GirderServer, slicer_worker: Path, cli_image: str) -> dict[str, Any]:
    """The CLI item that slicer_cli_web made of the image, ingested by an admin."""
    admin = girder_client(slicer_girder)
    public = next(admin.listFolder(slicer_girder.user_id, parentFolderType="user", name="Public"))
    tasks = admin.createFolder(public["_id"], "Slicer CLI tasks", public=True)
    # No ``pull``: slicer_cli_web pulls only the images the worker lacks.
    job = admin.put("slicer_cli_web/docker_image", parameters={"name": json.dumps([cli_image]), "folder": tasks["_id"]})
    done = slicer_girder.wait_for_status(job["_id"], [SUCCESS, ERROR, CANCELED], timeout=60)
    assert done["status"] == SUCCESS, log_of(done) + "\n" + slicer_worker.read_text()
    (cli,) = admin.get("slicer_cli_web/cli", parameters={"folder": tasks["_id"]})
    return cli


def user_client(girder: GirderServer) -> GirderClient:
    """A new (not admin) user of the site, logged in."""
    login = f"user{uuid.uuid4().hex[:8]}"
    client = GirderClient(apiUrl=girder.api_url)
    client.post(
        "user",
        parameters={"login": login, "email": f"{login}@example.com", "firstName": "A", "lastName": "User",
                    "password": "password123"},
    )  # fmt: skip
    client.authenticate(login, "password123")
    return client


def run_cli(client: GirderClient, image: str, data: bytes, **params: Any) -> tuple[dict, dict]:
    """Upload ``data`` as the user's input and run CopyUpper on it; returns (job, output folder)."""
    user = client.get("user/me")
    private = next(client.listFolder(user["_id"], parentFolderType="user", name="Private"))
    uploaded = client.uploadStreamToFolder(private["_id"], io.BytesIO(data), "input.txt", len(data))
    results = client.createFolder(private["_id"], "results")
    route = "slicer_cli_web/" + image.replace("/", "_").replace(":", "_") + "/CopyUpper/run"
    job = client.post(
        route,
        parameters={"inputFile": uploaded["_id"], "outputFile": "upper.txt", "outputFile_folder": results["_id"],
                    **{k: str(v) for k, v in params.items()}},
    )  # fmt: skip
    return job, results


def output_of(client: GirderClient, folder: dict[str, Any]) -> bytes:
    """The content of the CLI's output in ``folder``."""
    (item,) = client.listItem(folder["_id"])
    assert item["name"] == "upper.txt"
    (stored,) = client.listFile(item["_id"])
    out = io.BytesIO()
    client.downloadFile(stored["_id"], out)
    return out.getvalue()


def containers_of(job: dict[str, Any]) -> list[str]:
    return docker_ps(f"girder_worker.task_id={job['celeryTaskId']}")


def containers_of_image(image: str) -> list[str]:
    """Every container of ``image``, running or not: ingestion's and the runs'."""
    found = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"ancestor={image}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return found.stdout.split()


@builds_venv
def test_a_user_runs_an_ingested_cli_through_girder(slicer_girder, ingested, cli_image, slicer_worker):
    assert ingested["name"] == "CopyUpper"
    client = user_client(slicer_girder)
    data = b"hello slide archive\n"

    job, results = run_cli(client, cli_image, data, steps=3, pause=0.1)

    assert job["title"] == "Copy Upper on input.txt"
    done = slicer_girder.wait_for_status(job["_id"], [SUCCESS, ERROR, CANCELED], timeout=60)
    assert done["status"] == SUCCESS, log_of(done) + "\n" + slicer_worker.read_text()[-3000:]
    assert output_of(client, results) == b"HELLO SLIDE ARCHIVE\n"
    # The CLI's <filter-progress> lines became the job's progress, not log lines.
    assert done["progress"] == {"current": 1.0, "total": 1.0, "message": "upper-casing"}
    log = log_of(done)
    assert "wrote 20 bytes" in log
    assert "<filter-" not in log
    assert containers_of(done) == []
    assert containers_of_image(cli_image) == []


@builds_venv
def test_a_user_cancels_a_running_cli_through_girder(slicer_girder, ingested, cli_image, slicer_worker):
    client = user_client(slicer_girder)
    job, results = run_cli(client, cli_image, b"never copied\n", steps=600, pause=0.5)
    # Running: the container is up and the CLI reported its first progress.
    running = slicer_girder.wait_for_status(job["_id"], RUNNING, timeout=60)
    wait_for(lambda: containers_of(running), timeout=30, what="the CLI's container")
    wait_for(lambda: client.get(f"job/{job['_id']}").get("progress"), timeout=30, what="the CLI's first progress")

    started = time.monotonic()
    client.put(f"job/{job['_id']}/cancel")
    # The CLI's shell is its container's process 1, which ignores SIGTERM: it is killed.
    wait_for(lambda: not containers_of(running), timeout=60, what="the container to be removed")
    gone_after = time.monotonic() - started

    done = slicer_girder.wait_for_status(job["_id"], [SUCCESS, ERROR, CANCELED], timeout=30)
    assert done["status"] == CANCELED, log_of(done)
    # Stopped within the grace period: the worker stops it before its own deadline for the task.
    assert gone_after < GRACE, f"the container was gone {gone_after:.1f}s after the cancel"
    assert list(client.listItem(results["_id"])) == []
    assert containers_of_image(cli_image) == []


@builds_venv
def test_a_direct_path_site_mounts_the_input_from_the_assetstore(slicer_girder, ingested, cli_image, slicer_worker):
    admin = girder_client(slicer_girder)
    admin.put("system/setting", parameters={"key": "worker.direct_path", "value": "true"})
    try:
        client = user_client(slicer_girder)
        job, results = run_cli(client, cli_image, b"read in place\n", steps=1, pause=0)
        done = slicer_girder.wait_for_status(job["_id"], [SUCCESS, ERROR, CANCELED], timeout=60)
    finally:
        admin.put("system/setting", parameters={"key": "worker.direct_path", "value": "false"})

    assert done["status"] == SUCCESS, log_of(done)
    # slicer_cli_web bound the assetstore's file into the container instead of downloading it.
    assert "reading /mnt/girder_direct_worker/input.txt" in log_of(done)
    assert output_of(client, results) == b"READ IN PLACE\n"
    assert containers_of_image(cli_image) == []

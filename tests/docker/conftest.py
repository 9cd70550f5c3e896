"""Fixtures of the docker tests: the Docker Engine, test images, a worker that runs docker_run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence

import pytest

from girder_worker.testing import gw_worker  # noqa: F401  (a fixture)

from ..conftest import ROOT
from ..integration.girder_server import girder, girder_server_factory  # noqa: F401  (fixtures)
from . import images


def docker_ps(label: str) -> list[str]:
    """Names of the containers (running or not) with ``label`` (``key=value``)."""
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Fail (never skip) when the Docker Engine does not answer."""
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.fail(
            f"the Docker Engine does not answer ({result.stderr.strip()}); .ci/run starts dockerd",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def busybox(docker_engine: None) -> str:
    """A local busybox image's tag."""
    return images.busybox_image()


@pytest.fixture(scope="session")
def gpu_image(docker_engine: None) -> str:
    """A busybox image with the label of images that want NVIDIA GPUs."""
    return images.busybox_image("LABEL com.nvidia.volumes.needed=nvidia_driver")


@pytest.fixture
def gw_worker_env() -> Mapping[str, str]:
    return {
        # No test container needs a network.
        "GIRDER_WORKER_DOCKER_RUN_OPTIONS": json.dumps({"network_mode": "none"}),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def gw_worker_args() -> Sequence[str]:
    # The tests' own stream transforms must be known to the worker to be decoded.
    return ("-P", "threads", "-c", "2", "-I", "tests.docker.streams")


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails the test if a container of it is left behind."""
    before = set(docker_ps("girder_worker.task_id"))
    yield
    left = set(docker_ps("girder_worker.task_id")) - before
    assert not left, f"containers left behind: {left}"

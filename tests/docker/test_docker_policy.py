"""A hostile docker_run message, through a real worker and Docker Engine: refused in one line,
nothing started, and the worker serves the next task."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from girder_worker.docker._policy import DockerRunNotAllowed
from girder_worker.docker.tasks import docker_run
from girder_worker.docker.transforms import BindMountVolume
from girder_worker_utils import JobStatus

pytestmark = pytest.mark.usefixtures("no_leftovers")


@pytest.fixture
def site_options():
    """The site's GIRDER_WORKER_DOCKER_RUN_OPTIONS; None: conftest's. A test parametrizes it to change it."""
    return None


@pytest.fixture
def gw_worker_env(gw_worker_env, site_options):
    # The site runs its own images only (the tests' busybox is gwtest/busybox:<hash>).
    env = {**gw_worker_env, "GIRDER_WORKER_DOCKER_IMAGES": "gwtest/bus*, dsarchive/*"}
    if site_options is not None:
        env["GIRDER_WORKER_DOCKER_RUN_OPTIONS"] = json.dumps(site_options)
    return env


MARKER = "pwned-by-a-message"

# (what the message asks for, words of the refusal's line)
HOSTILE = [
    ({"privileged": True}, "privileged=True, which a message may not set"),
    ({"network_mode": "host"}, "network_mode='host', which a message may not set"),
    ({"pid_mode": "host"}, "pid_mode='host'"),
    ({"cap_add": ["SYS_ADMIN"]}, "cap_add=['SYS_ADMIN']"),
    ({"devices": ["/dev/mem:/dev/mem:rwm"]}, "devices="),
    ({"volumes": {"/": {"bind": "/host", "mode": "rw"}}}, "mounts the host path '/'"),
    ({"volumes": [BindMountVolume("/etc", "/host-etc", mode="ro")]}, "the host path '/etc'"),
]


def _created_containers(task_id: str, since: float) -> list[str]:
    """The containers of ``task_id`` the engine created since ``since`` (even if removed since)."""
    out = subprocess.run(
        ["docker", "events", "--since", f"{since:.0f}", "--until", f"{time.time() + 1:.0f}", "--filter",
         "event=create", "--filter", f"label=girder_worker.task_id={task_id}", "--format", "{{.Actor.ID}}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return out.split()


@pytest.mark.parametrize(("asks", "line"), HOSTILE, ids=[next(iter(a)) + str(i) for i, (a, _) in enumerate(HOSTILE)])
def test_a_message_that_asks_for_the_host_is_refused_in_one_line(gw_worker, busybox, asks, line):
    since = time.time() - 1
    script = f"echo {MARKER}; touch /host/{MARKER} /host-etc/{MARKER}"
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sh", "-c", script], **asks)

    with pytest.raises(DockerRunNotAllowed) as info:
        result.get(timeout=60)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"docker_run {result.id}: ")
    assert line in message
    assert "GIRDER_WORKER_DOCKER_" in message  # the fix: the site's variable
    assert gw_worker.job(result).status == JobStatus.ERROR
    # One line in the worker log, no traceback; and nothing was created, nothing ran.
    gw_worker.wait_for_log(rf"{result.id}\] raised expected: DockerRunNotAllowed")
    assert [x for x in gw_worker.log.splitlines() if result.id in x and "DockerRunNotAllowed" in x] != []
    assert "Traceback" not in gw_worker.log
    assert _created_containers(result.id, since) == []
    assert MARKER not in gw_worker.log

    # The worker serves the next task.
    ok = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["echo", "still serving"])
    assert ok.get(timeout=60) == []
    assert "still serving\n" in gw_worker.job(ok).log


def test_only_the_sites_images_run(gw_worker, busybox):
    refused = gw_worker.delay(docker_run, "evil/miner:latest", pull_image=True, container_args=["true"])

    with pytest.raises(DockerRunNotAllowed, match=r"image 'evil/miner:latest' is not one this worker runs"):
        refused.get(timeout=60)
    # Refused before any pull: the worker says nothing of a registry.
    assert "pull" not in gw_worker.log
    ok = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["echo", "allowed image"])
    assert ok.get(timeout=60) == []


def test_the_sites_own_options_are_not_checked(gw_worker, busybox):
    # conftest's GIRDER_WORKER_DOCKER_RUN_OPTIONS sets network_mode, which a message may only set to none.
    script = "echo interfaces: $(ls /sys/class/net)"
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sh", "-c", script])

    assert result.get(timeout=60) == []
    assert "interfaces: lo\n" in gw_worker.job(result).log  # network_mode none: no eth0


@pytest.mark.parametrize("site_options", [{"network_mode": "none", "mem_limit": "64m"}])
def test_a_message_may_not_raise_a_limit_the_site_sets(gw_worker, busybox):
    since = time.time() - 1
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["echo", MARKER], mem_limit="1g")

    with pytest.raises(DockerRunNotAllowed) as info:
        result.get(timeout=60)
    assert str(info.value) == (
        f"docker_run {result.id}: the message asks for mem_limit='1g', but the site sets mem_limit='64m' in "
        "GIRDER_WORKER_DOCKER_RUN_OPTIONS, which a message may not change; to let messages change it, add "
        "mem_limit to GIRDER_WORKER_DOCKER_ALLOW_OPTIONS in the worker's environment"
    )
    assert gw_worker.job(result).status == JobStatus.ERROR
    gw_worker.wait_for_log(rf"{result.id}\] raised expected: DockerRunNotAllowed")
    assert _created_containers(result.id, since) == []
    assert MARKER not in gw_worker.log

    # The site's own value runs, and the container has the site's limit (cgroup v2 or v1).
    limit = "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; true"
    ok = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sh", "-c", limit], mem_limit="64m")
    assert ok.get(timeout=60) == []
    assert f"{64 * 1024 * 1024}\n" in gw_worker.job(ok).log

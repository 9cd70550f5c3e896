"""docker_run through a real worker, with a real Docker Engine and a local image."""

from __future__ import annotations

import os

import pytest

from girder_worker.docker.tasks import docker_run
from girder_worker.docker.transforms import (
    BindMountVolume,
    Connect,
    NamedInputPipe,
    NamedOutputPipe,
    TemporaryVolume,
    VolumePath,
)
from girder_worker_utils import JobStatus

from .conftest import docker_ps
from .streams import FileReader, FileWriter

pytestmark = pytest.mark.usefixtures("no_leftovers")


@pytest.fixture
def gw_worker_env(gw_worker_env, tmp_path):
    # The site lets messages bind-mount the test's own directory (see test_docker_policy.py).
    return {**gw_worker_env, "GIRDER_WORKER_DOCKER_HOST_PATHS": str(tmp_path)}


def test_output_goes_to_the_job_log_and_the_worker_log(gw_worker, busybox):
    result = gw_worker.delay(
        docker_run, busybox, pull_image=False, container_args=["sh", "-c", "echo hello from inside; echo oops >&2"]
    )

    assert result.get(timeout=60) == []
    job = gw_worker.job(result)
    assert job.status == JobStatus.SUCCESS
    assert "hello from inside\n" in job.log
    assert "oops\n" in job.log
    assert f"docker_run[{result.id}] stdout: hello from inside" in gw_worker.log
    assert f"docker_run[{result.id}] stderr: oops" in gw_worker.log


def test_non_zero_exit_fails_with_the_code_and_last_lines(gw_worker, busybox):
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        container_args=["sh", "-c", "for i in $(seq 1 30); do echo line $i; done; exit 3"],
    )

    with pytest.raises(Exception, match=r"Non-zero exit code from docker container \(3\)") as info:
        result.get(timeout=60)
    message = str(info.value)
    assert "line 30" in message
    assert "line 5\n" not in message  # only the last lines
    assert gw_worker.job(result).status == JobStatus.ERROR


def test_pull_false_with_a_missing_image_says_so_in_one_line(gw_worker):
    result = gw_worker.delay(docker_run, "gwtest/never-built:1", pull_image=False, container_args=["true"])

    with pytest.raises(Exception, match="not on this worker and pull_image is False") as info:
        result.get(timeout=60)
    assert "\n" not in str(info.value)


def test_an_unreachable_registry_is_one_clear_line(gw_worker):
    result = gw_worker.delay(docker_run, "127.0.0.1:9/gwtest/absent:1", container_args=["true"])

    expected = r"cannot pull docker image '127.0.0.1:9/gwtest/absent:1' \(.+\), and it is not"
    with pytest.raises(Exception, match=expected):
        result.get(timeout=60)


@pytest.mark.parametrize("policy", [True, "if-not-present"])
def test_a_local_image_runs_whatever_the_pull_policy(gw_worker, busybox, policy):
    result = gw_worker.delay(docker_run, busybox, pull_image=policy, container_args=["echo", "ran"])

    assert result.get(timeout=60) == []
    assert "ran\n" in gw_worker.job(result).log
    if policy is True:  # no registry here: it says it ran the local copy
        assert f"could not pull docker image {busybox}" in gw_worker.log


def test_bind_mount_and_temporary_volumes(gw_worker, busybox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("42\n")
    scratch = TemporaryVolume()
    volumes = [BindMountVolume(str(data), "/data", mode="rw"), scratch]
    script = "cat /data/in.txt > $0; echo wrote > $1; cat $0 > /data/out.txt; ls -d $2"
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        volumes=volumes,
        container_args=["sh", "-c", script, VolumePath("copy.txt", scratch), VolumePath("note.txt"), scratch],
    )

    assert result.get(timeout=60) == []
    assert (data / "out.txt").read_text() == "42\n"
    log = gw_worker.job(result).log
    assert "/mnt/girder_worker/" in log  # the temporary volume's container path


def test_temporary_volumes_are_removed_after_the_run(gw_worker, busybox, tmp_path):
    root = tmp_path / "tmproot"
    scratch = TemporaryVolume(host_dir=str(root))
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        volumes=[scratch],
        container_args=["sh", "-c", "mkdir -p $0/a/b && echo x > $0/a/b/f && chmod 700 $0/a", scratch],
    )

    assert result.get(timeout=60) == []
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_named_pipes_stream_megabytes_both_ways(gw_worker, busybox, tmp_path):
    source = tmp_path / "in.bin"
    payload = os.urandom(3 * 1024 * 1024)
    source.write_bytes(payload)
    received = tmp_path / "out.bin"
    script = "cat $0 > $1"  # the input pipe, copied to the output pipe
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        container_args=[
            "sh",
            "-c",
            script,
            Connect(FileReader(str(source)), NamedInputPipe("in")),
            Connect(NamedOutputPipe("out"), FileWriter(str(received))),
        ],
    )

    assert result.get(timeout=60) == []
    assert received.read_bytes() == payload


def test_containers_are_labelled_with_the_task_id_and_removed(gw_worker, busybox):
    result = gw_worker.delay(docker_run, busybox, pull_image=False, container_args=["sleep", "1"])

    assert result.get(timeout=60) == []
    assert docker_ps(f"girder_worker.task_id={result.id}") == []


def test_an_image_that_asks_for_gpus_runs_without_when_the_engine_has_none(gw_worker, gpu_image):
    result = gw_worker.delay(docker_run, gpu_image, pull_image=False, container_args=["echo", "no gpu here"])

    assert result.get(timeout=60) == []
    assert "no gpu here\n" in gw_worker.job(result).log
    assert f"docker image {gpu_image} asks for NVIDIA GPUs, which this Docker Engine cannot give" in gw_worker.log

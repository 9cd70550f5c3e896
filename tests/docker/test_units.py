"""The pieces of docker_run that need no Docker Engine."""

from __future__ import annotations

import json
import struct

import docker
import pytest

from girder_worker.docker._client import DockerSetupError, client_timeout, run_options
from girder_worker.docker._container import TASK_LABEL, create_kwargs
from girder_worker.docker._policy import DockerRunNotAllowed
from girder_worker.docker._run import _options
from girder_worker.docker.io import FDWriteStreamConnector
from girder_worker.docker.stream_adapter import DockerStreamPushAdapter, JobProgressAdapter
from girder_worker.docker.transforms import BindMountVolume, TemporaryVolume, VolumePath


class _Images:
    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels

    def inspect_image(self, image: str) -> dict[str, object]:
        return {"Config": {"Labels": self.labels}}


class _Client:
    """Answers the one question create_kwargs asks the engine: the image's labels."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.api = _Images(labels)


def test_an_image_labelled_for_nvidia_gets_a_gpu_device_request():
    kwargs = create_kwargs(_Client({"com.nvidia.volumes.needed": "nvidia_driver"}), "img", ["x"], {}, "t1")

    (request,) = kwargs["device_requests"]
    assert isinstance(request, docker.types.DeviceRequest)
    assert (request.count, request.capabilities) == (-1, [["gpu"]])
    assert kwargs["labels"][TASK_LABEL] == "t1"


def test_runtime_nvidia_asks_for_gpus_as_a_device_request():
    kwargs = create_kwargs(_Client({}), "img", [], {"runtime": "nvidia"}, "t1")

    assert "runtime" not in kwargs
    assert kwargs["device_requests"][0].capabilities == [["gpu"]]


def test_an_image_without_the_label_gets_no_gpu():
    assert "device_requests" not in create_kwargs(_Client({}), "img", [], {}, "t1")


def test_run_options_merge_and_volume_lists_become_mounts():
    options = '{"network_mode": "none", "tty": true, "volumes": ["/a:/b", "/c:/d:rw"]}'
    env = {"GIRDER_WORKER_DOCKER_RUN_OPTIONS": options}

    assert run_options(env) == {
        "network_mode": "none",
        "volumes": {"/a": {"bind": "/b", "mode": "ro"}, "/c": {"bind": "/d", "mode": "rw"}},
    }


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '{"volumes": ["nocolon"]}'])
def test_bad_run_options_are_one_line_naming_the_variable(bad):
    with pytest.raises(DockerSetupError, match=r"^GIRDER_WORKER_DOCKER_RUN_OPTIONS is not a JSON object") as info:
        run_options({"GIRDER_WORKER_DOCKER_RUN_OPTIONS": bad})
    assert "\n" not in str(info.value)


def test_the_container_gets_the_sites_limit_and_both_environments(monkeypatch):
    site = {"mem_limit": "2g", "environment": ["HTTP_PROXY=http://proxy:3128", "LANG=C.UTF-8"]}
    monkeypatch.setenv("GIRDER_WORKER_DOCKER_RUN_OPTIONS", json.dumps(site))
    for name in (
        "GIRDER_WORKER_DOCKER_ALLOW_OPTIONS",
        "GIRDER_WORKER_DOCKER_HOST_PATHS",
        "GIRDER_WORKER_DOCKER_IMAGES",
    ):
        monkeypatch.delenv(name, raising=False)
    message = {"environment": {"GIRDER_API_URL": "http://girder"}, "working_dir": "/work"}

    options = _options("busybox", None, message, ["/bin/sh", "-c"], "t-1")

    assert options == {
        "mem_limit": "2g",
        "environment": {"HTTP_PROXY": "http://proxy:3128", "LANG": "C.UTF-8", "GIRDER_API_URL": "http://girder"},
        "working_dir": "/work",
        "entrypoint": ["/bin/sh", "-c"],
        "volumes": {},
    }
    with pytest.raises(DockerRunNotAllowed, match="asks for mem_limit='1t', but the site sets mem_limit='2g'"):
        _options("busybox", None, {**message, "mem_limit": "1t"}, None, "t-1")


def test_docker_client_timeout():
    assert client_timeout({"DOCKER_CLIENT_TIMEOUT": "7"}) == 7
    assert client_timeout({}) is None
    with pytest.raises(DockerSetupError, match="DOCKER_CLIENT_TIMEOUT='soon'"):
        client_timeout({"DOCKER_CLIENT_TIMEOUT": "soon"})


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


class _Collect:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, buf: bytes) -> None:
        self.data += buf

    def close(self) -> None:
        self.closed = True


def test_docker_stream_frames_split_anywhere_are_put_together():
    stream = _frame(1, b"hello ") + _frame(2, b"world") + _frame(1, b"!")
    out = _Collect()
    adapter = DockerStreamPushAdapter(out)
    for i in range(len(stream)):
        adapter.write(stream[i : i + 1])
    adapter.close()

    assert out.data == b"hello world!"
    assert out.closed


def test_json_lines_become_progress():
    # What a container prints is its own: a line that is no JSON object, or is nested too
    # deep for Python's decoder (RecursionError), is no progress, and the next line is read.
    calls = []

    class Job:
        def updateProgress(self, **kw):
            calls.append(kw)

    adapter = JobProgressAdapter(Job())
    adapter.write(b'{"current": 1, "tot')
    adapter.write(b'al": 4}\nnot json\n[1]\n' + b"[" * 100_000 + b"]" * 100_000 + b'\n{"current": 2, "message": "m"}')
    adapter.close()

    assert calls == [
        {"total": 4, "current": 1, "message": None},
        {"total": None, "current": 2, "message": "m"},
    ]


def test_a_pipe_that_takes_part_of_a_chunk_gets_the_rest_next_time():
    class Slow:
        def __init__(self) -> None:
            self.got = b""

        def write(self, buf: bytes) -> int:
            self.got += buf[:3]
            return min(3, len(buf))

        def close(self) -> None:
            pass

    class Source:
        def __init__(self) -> None:
            self.chunks = [b"abcdefgh", b""]

        def read(self, n: int) -> bytes:
            return self.chunks.pop(0)

    sink = Slow()
    connector = FDWriteStreamConnector(Source(), sink)
    while connector.write(4) != 0:
        pass

    assert sink.got == b"abcdefgh"


def test_volume_transforms_keep_the_originals_attribute_names():
    volume = BindMountVolume("/host", "/container", mode="ro")
    assert vars(volume) == {"_host_path": "/host", "_container_path": "/container", "mode": "ro"}
    assert volume._repr_json_() == {"/host": {"bind": "/container", "mode": "ro"}}
    assert set(vars(TemporaryVolume())) >= {"host_dir", "_mode", "_transformed", "_host_path", "_container_path"}
    assert set(vars(VolumePath("f.txt"))) == {"filename", "_volume"}
    with pytest.raises(ValueError, match="relative"):
        VolumePath("/etc/passwd")


def test_the_reaper_begins_after_the_event_loops_first_tick(monkeypatch):
    """Redis subscribes the worker's broadcast queue in an on_tick callback of the first turn;
    the reaper (a slow Docker SDK import) must not hold the loop before that, or a
    ``celery control`` command sent right after "ready" is lost."""
    from kombu.asynchronous import Hub

    from girder_worker.docker._reaper import ReaperStep

    order: list[str] = []
    hub = Hub()
    hub.on_tick.add(lambda: order.append("tick"))
    step = ReaperStep.__new__(ReaperStep)
    monkeypatch.setattr(step, "begin", lambda: order.append("begin"), raising=False)
    step.start(type("Worker", (), {"hub": hub})())
    loop = hub.create_loop()
    for _ in range(3):
        next(loop)
    hub.close()

    assert order.count("begin") == 1
    assert order.index("tick") < order.index("begin")

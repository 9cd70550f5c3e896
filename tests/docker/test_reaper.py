"""The reaper's Engine API calls: the real Docker Engine on its socket, and a hostile one.

A starting worker lists and removes a dead worker's containers over the local
socket with the standard library (no Docker SDK in its main process). Against
the real engine it must see what the SDK sees and remove exactly the orphans;
against a hostile or absent engine it must fail in one line and never hang or
read without bound (that engine is a fake, named as such: the real one cannot
misbehave on purpose).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from girder_worker.docker import _engine
from girder_worker.docker._container import HOST_LABEL, PID_LABEL, REMOVE_LABEL, TASK_LABEL, WORKER_LABEL
from girder_worker.docker._engine import Container, EngineError, LocalEngine, SdkEngine, engine_for, local_socket
from girder_worker.docker._reaper import ReaperStep, reap

from ..conftest import ROOT
from .conftest import docker_ps


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def containers(busybox: str) -> Iterator[dict[str, str]]:
    """Three containers of one made-up task: an orphan, one of a live worker, an orphan kept on purpose."""
    task_id = f"reaper-{uuid.uuid4().hex[:8]}"
    host = socket.gethostname()
    made = {}

    def create(name: str, pid: int, *extra: str, run: bool = False) -> None:
        labels = {TASK_LABEL: task_id, WORKER_LABEL: "gone@nowhere", HOST_LABEL: host, PID_LABEL: str(pid)}
        args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        full = f"{task_id}-{name}"
        command = ["docker", "run", "-d"] if run else ["docker", "create"]
        subprocess.run([*command, "--name", full, *args, *extra, busybox, "true"], check=True, capture_output=True)
        made[name] = full

    create("orphan", dead_pid())
    create("live", 1)  # pid 1 lives as long as the machine
    create("kept", dead_pid(), run=True)  # exited, without the remove label: remove_container=False
    subprocess.run(["docker", "wait", made["kept"]], check=True, capture_output=True)
    try:
        yield {"task_id": task_id, **made}
    finally:
        subprocess.run(["docker", "rm", "-f", *made.values()], capture_output=True)


def test_the_standard_library_sees_the_containers_the_docker_sdk_sees(containers):
    docker = pytest.importorskip("docker")
    label = f"{TASK_LABEL}={containers['task_id']}"

    ours = sorted(LocalEngine(local_socket()).containers(label), key=lambda c: c.name)
    client = docker.from_env()
    try:
        sdk = sorted(SdkEngine(client).containers(label), key=lambda c: c.name)
    finally:
        client.close()

    assert ours == sdk
    assert [(c.name, c.status) for c in ours] == [
        (containers["kept"], "exited"),
        (containers["live"], "created"),
        (containers["orphan"], "created"),
    ]


def test_reap_removes_the_orphans_of_dead_workers_only(containers, caplog):
    caplog.set_level(logging.WARNING, logger="girder_worker.docker")
    engine = engine_for({})

    reaped = reap(engine, nodename="someone-else@here")

    assert containers["orphan"] in reaped
    assert set(docker_ps(f"{TASK_LABEL}={containers['task_id']}")) == {containers["live"], containers["kept"]}
    line = next(r.getMessage() for r in caplog.records if containers["orphan"] in r.getMessage())
    assert f"of task {containers['task_id']}: the worker that started it (gone@nowhere, pid" in line


def test_a_kept_container_is_removed_once_its_run_asked_for_removal(busybox):
    name = f"reaper-{uuid.uuid4().hex[:8]}"
    labels = {TASK_LABEL: name, HOST_LABEL: socket.gethostname(), PID_LABEL: str(dead_pid()), REMOVE_LABEL: "1"}
    args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    subprocess.run(["docker", "run", "-d", "--name", name, *args, busybox, "true"], check=True, capture_output=True)
    subprocess.run(["docker", "wait", name], check=True, capture_output=True)
    try:
        assert name in reap(engine_for({}), nodename=None)
        assert docker_ps(f"{TASK_LABEL}={name}") == []
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


# -- where the engine is --------------------------------------------------------


@pytest.mark.parametrize(
    ("docker_host", "expected"),
    [
        (None, "/var/run/docker.sock"),
        ("", "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
        ("tcp://10.0.0.5:2376", None),
        ("ssh://me@builder", None),
    ],
)
def test_docker_host_decides_whether_the_sdk_is_needed(docker_host, expected):
    env = {} if docker_host is None else {"DOCKER_HOST": docker_host}
    assert local_socket(env) == expected


def test_the_client_timeout_bounds_each_call_on_the_local_socket():
    engine = engine_for({"DOCKER_CLIENT_TIMEOUT": "7"})
    assert isinstance(engine, LocalEngine)
    assert engine.timeout == 7
    with pytest.raises(Exception, match="DOCKER_CLIENT_TIMEOUT='soon' is not a positive number of seconds"):
        engine_for({"DOCKER_CLIENT_TIMEOUT": "soon"})


# -- a hostile engine (a fake: the real one cannot misbehave on purpose) ---------


class HostileEngine:
    """A Unix socket that answers every request with the same raw HTTP response."""

    def __init__(self, path: Path, response: bytes) -> None:
        self.path = str(path)
        self.response = response
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(4)
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.requests.append(conn.recv(65536))
                with contextlib.suppress(OSError):
                    conn.sendall(self.response)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Any]:
    made: list[HostileEngine] = []

    def start(response: bytes) -> HostileEngine:
        made.append(HostileEngine(tmp_path / f"engine-{len(made)}.sock", response))
        return made[-1]

    yield start
    for engine in made:
        engine.close()


def http(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_an_engine_error_is_one_line_with_the_engines_message(hostile):
    engine = hostile(http("500 Internal Server Error", json.dumps({"message": "driver failed"}).encode()))
    with pytest.raises(EngineError) as caught:
        LocalEngine(engine.path, timeout=5).containers(TASK_LABEL)
    assert str(caught.value) == f"listing containers on {engine.path}: HTTP 500: driver failed"
    assert b"GET /containers/json?all=1&filters=" in engine.requests[0]


def test_an_answer_that_is_not_the_engine_apis_is_refused(hostile):
    engine = hostile(http("200 OK", b'[{"Names": ["/x"]}]'))  # no Id
    with pytest.raises(EngineError, match="not the Engine API's answer"):
        LocalEngine(engine.path, timeout=5).containers(TASK_LABEL)


@pytest.mark.parametrize("status", ["200 OK", "500 Internal Server Error"])
def test_an_answer_nested_too_deep_to_decode_is_refused_in_one_line(hostile, status):
    # Python's JSON decoder raises RecursionError (not ValueError) on deep nesting.
    engine = hostile(http(status, b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(EngineError) as caught:
        LocalEngine(engine.path, timeout=5).containers(TASK_LABEL)
    if status == "200 OK":
        assert "not the Engine API's answer" in str(caught.value)
    else:
        assert str(caught.value) == f"listing containers on {engine.path}: HTTP 500"


def test_an_endless_listing_is_not_read_past_its_limit(hostile, monkeypatch):
    monkeypatch.setattr(_engine, "MAX_LISTING_BYTES", 1000)
    engine = hostile(http("200 OK", b"[" + b" " * 5000 + b"]"))
    with pytest.raises(EngineError, match="the answer is larger than 1000 bytes"):
        LocalEngine(engine.path, timeout=5).containers(TASK_LABEL)


def test_an_engine_that_never_answers_times_out(tmp_path):
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)  # accepts (the kernel does), never answers
    try:
        with pytest.raises(EngineError, match="timed out"):
            LocalEngine(str(path), timeout=0.5).containers(TASK_LABEL)
    finally:
        server.close()


def reaper_lines(caplog: Any) -> list[str]:
    """What a starting worker's reaper logs (its thread run to the end)."""
    caplog.set_level(logging.WARNING, logger="girder_worker.docker")
    step = ReaperStep.__new__(ReaperStep)
    step.begin()
    assert step.thread is not None
    step.thread.join(timeout=10)
    return [r.getMessage() for r in caplog.records]


def test_a_worker_without_a_docker_engine_starts_and_says_so_in_one_line(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")

    assert reaper_lines(caplog) == [
        f"docker: could not check for containers left by dead workers: listing containers on "
        f"{tmp_path / 'no-engine.sock'}: [Errno 2] No such file or directory; "
        "is dockerd running, and DOCKER_HOST right?"
    ]


def test_the_docker_pages_line_of_a_machine_without_docker_is_the_workers(caplog, monkeypatch):
    page = " ".join((ROOT / "docs" / "docker.rst").read_text().split())
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    monkeypatch.setattr(_engine, "_UnixConnection", NoEngineHere)

    (line,) = reaper_lines(caplog)

    assert f"WARNING {line}" in page


class NoEngineHere(_engine._UnixConnection):
    """The connection to /var/run/docker.sock on a machine without Docker (a fake: this one has it)."""

    def connect(self) -> None:
        raise FileNotFoundError(2, "No such file or directory")


def test_removing_a_container_the_engine_refuses_names_it(hostile):
    engine = hostile(http("409 Conflict", json.dumps({"message": "removal already in progress"}).encode()))
    with pytest.raises(EngineError) as caught:
        LocalEngine(engine.path, timeout=5).remove(Container("abc", "old-run", "running"))
    assert str(caught.value) == "removing container old-run: HTTP 409: removal already in progress"
    assert engine.requests[0].startswith(b"DELETE /containers/abc?force=1 ")


def test_a_container_removed_meanwhile_is_no_failure(hostile):
    engine = hostile(http("404 Not Found", json.dumps({"message": "No such container: abc"}).encode()))
    LocalEngine(engine.path, timeout=5).remove(Container("abc", "old-run", "exited"))
    assert len(engine.requests) == 1

"""``girder-worker status`` and Celery's commands through ``girder-worker``, against a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..conftest import WorkerProcess, clean_env, wait_for
from .conftest import purge_queue


def girder_worker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "girder_worker", *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def worker_command(tmp_path: Path, installed_plugins: Callable[[str], Path]) -> Iterator[Callable[..., WorkerProcess]]:
    """``worker_command(env, *args)``: ``girder-worker worker ARGS`` with the good test plugins, until ready."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *args: str) -> WorkerProcess:
        full_env = clean_env({**env, "PYTHONPATH": str(installed_plugins("good"))})
        worker = WorkerProcess(["worker", *args], full_env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop(timeout=10, sig=signal.SIGQUIT)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq", "embedded"])
def test_status_shows_the_worker_its_plugins_active_task_and_queue_depth(
    broker, env_for, worker_command, client_app, unique_queue, tmp_path
):
    env = env_for(broker)
    node = f"{unique_queue}@{os.uname().nodename}"
    # threads: the worker answers remote control while its one task runs (solo would not).
    worker_command(env, "-l", "info", "-P", "threads", "-c", "1", "-Q", unique_queue, "-n", node)
    app = client_app(env)
    runs = tmp_path / "runs.txt"
    try:
        # ignore_result: the client subscribes to no result it would leave behind at exit.
        running = app.send_task("gwtest.outage.job", args=[str(runs), 60.0], queue=unique_queue, ignore_result=True)
        wait_for(lambda: runs.exists() and "start" in runs.read_text(), 60, "the long task to start")
        for _ in range(3):
            app.send_task("gwtest.outage.job", args=[str(runs), 0.0], queue=unique_queue, ignore_result=True)

        # Other tests' workers may share the broker: ask ours by name through Celery's own command too.
        ping = girder_worker("inspect", "ping", "-d", node, env=env)
        plugins = girder_worker("inspect", "plugins", "-d", node, env=env)
        status = girder_worker("status", "--timeout", "3", env=env)

        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert f"->  {node}: OK" in ping.stdout
        assert plugins.returncode == 0, plugins.stdout + plugins.stderr
        assert "'name': 'gwtesttasks', 'distribution': 'gw-testtasks'" in plugins.stdout
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith("broker: ")
        at = lines.index(f"  {node}")
        assert lines[at + 1].startswith("    plugins: ")
        assert "gwtesttasks (gw-testtasks " in lines[at + 1]
        assert "gwsetuptools (gw-setuptools-plugin " in lines[at + 1]
        assert lines[at + 2] == "    active:  1 task(s)"
        assert lines[at + 3] == f"      gwtest.outage.job[{running.id}]"
        assert f"  {unique_queue}: 3 message(s) waiting, consumed by 1 worker(s)" in lines
        assert status.stderr == ""
    finally:
        purge_queue(app, unique_queue)


def test_status_with_no_worker_is_one_line(tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}
    status = girder_worker("status", "--timeout", "0.5", env=env)
    redis = girder_worker("status", "--timeout", "0.5", env={"GIRDER_WORKER_BROKER": "redis://:pw@127.0.0.1:6379/9"})

    assert status.returncode == 1
    assert status.stdout == ""
    assert status.stderr.splitlines() == [
        f"girder-worker: no worker answered within 0.5 s on the broker (embedded, in {tmp_path / 'data'}); "
        "start one with `girder-worker`, or wait longer with --timeout"
    ]
    assert redis.returncode == 1
    assert redis.stderr.splitlines() == [
        "girder-worker: no worker answered within 0.5 s on the broker (redis://:**@127.0.0.1:6379/9); "
        "start one with `girder-worker`, or wait longer with --timeout"
    ]

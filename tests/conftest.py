"""Fixtures shared by every test folder.

Nothing here imports girder_worker at module level: ``tests/utils`` runs in an
environment that has girder-worker-utils alone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"
BROKERS = ("embedded", "rabbitmq", "redis")


def require_service(name: str, host: str, port: int) -> None:
    """Fail the test (never skip) when a service it needs does not answer."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(
            f"{name} at {host}:{port} is not reachable ({exc}); the tests need it running "
            "(.ci/run starts it when it is installed)",
            pytrace=False,
        )


def broker_env(broker: str, data_dir: Path) -> dict[str, str]:
    """The GIRDER_WORKER_* variables that point a worker or client at ``broker``."""
    if broker == "embedded":
        return {"GIRDER_WORKER_DATA_DIR": str(data_dir)}
    if broker == "rabbitmq":
        require_service("RabbitMQ", "127.0.0.1", 5672)
        require_service("Redis", "127.0.0.1", 6379)
        return {"GIRDER_WORKER_BROKER": RABBITMQ_URL, "GIRDER_WORKER_BACKEND": "redis://127.0.0.1:6379/1"}
    if broker == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        return {"GIRDER_WORKER_BROKER": REDIS_URL}
    raise ValueError(broker)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something true, and return that; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


class WorkerProcess:
    """A real ``girder-worker`` process whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "girder_worker", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_path.parent,
            )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log)
            if match:
                return match
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited ({self.proc.returncode}) before {pattern!r}:\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} in the worker log after {timeout}s:\n{self.log}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        self.wait_for_log(r" ready\.", timeout)
        return self

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30, sig: int = signal.SIGTERM) -> None:
        """Stop the worker: warm shutdown (SIGTERM) by default, SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


@pytest.fixture
def unique_queue() -> str:
    return f"gwtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def installed_plugins(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Install test plugin packages into a folder, for a worker's PYTHONPATH.

    ``installed_plugins("good")`` holds gw-testtasks and gw-setuptools-plugin;
    ``installed_plugins("broken")`` holds one plugin for each way of failing.
    """
    sets = {
        "good": ["gw-testtasks", "gw-setuptools-plugin"],
        "broken": [
            "gw-broken-import",
            "gw-broken-ctor",
            "gw-broken-task-imports",
            "gw-missing-module",
            "gw-not-a-plugin",
        ],
    }
    made: dict[str, Path] = {}

    def install(name: str) -> Path:
        if name not in made:
            target = tmp_path_factory.mktemp(f"plugins-{name}")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-build-isolation",
                    "--no-index",
                    "--disable-pip-version-check",
                    "--target",
                    str(target),
                    *(str(PLUGINS / p) for p in sets[name]),
                ],
                check=True,
                capture_output=True,
            )
            made[name] = target
        return made[name]

    return install


@pytest.fixture
def start_worker(tmp_path: Path, installed_plugins: Callable[[str], Path]) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real ``girder-worker`` processes; every one is stopped after the test.

    ``start_worker(env, "-P", "solo", plugins=("good",), ready=True)``.
    """
    workers: list[WorkerProcess] = []

    def start(
        env: dict[str, str], *args: str, plugins: tuple[str, ...] = ("good",), ready: bool = True
    ) -> WorkerProcess:
        full_env = clean_env(env)
        paths = [str(installed_plugins(p)) for p in plugins]
        if paths:
            full_env["PYTHONPATH"] = os.pathsep.join(paths)
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(["-l", "info", *args], full_env, log).start()
        workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=10, sig=signal.SIGQUIT)  # cold shutdown: the test is over

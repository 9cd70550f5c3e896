"""Fixtures for the tests that put our packages beside the Girder ecosystem's real ones.

``ecosystem_venv`` (session)
    The venv with our wheels and the real large-image-tasks and girder-slicer-cli-web,
    installed as a site installs them (see :mod:`tests.ecosystem.venvs`).
``original`` (function)
    :class:`Original`: the original girder-worker 5.0.21 in its own venv, with a plugin of
    its style that registers ``gwexample.analyses.tasks.fibonacci``. ``original.run(code)``
    runs a Python snippet there; ``original.start_worker(queue)`` starts its worker
    (``celery -A girder_worker.app worker``), stopped after the test.

Both talk to the shared RabbitMQ on ``amqp://guest:guest@127.0.0.1:5672//`` with the
``rpc://`` result backend, the original's defaults; each test uses a queue of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import kombu
import pytest

from ..conftest import RABBITMQ_URL, clean_env, require_service
from ..integration.conftest import client_app  # noqa: F401  (a fixture these tests use)
from ..integration.girder_server import girder, girder_server_factory  # noqa: F401  (fixtures)
from ..integration.test_transforms import girder_file  # noqa: F401  (a fixture)
from .venvs import ensure_ecosystem_venv, ensure_original_venv, venv_python

#: The worker and client settings of the interoperability tests: the original's defaults.
BROKER_ENV = {"GIRDER_WORKER_BROKER": RABBITMQ_URL, "GIRDER_WORKER_BACKEND": "rpc://"}


@pytest.fixture(scope="session")
def ecosystem_venv() -> Path:
    return ensure_ecosystem_venv()


@pytest.fixture
def rabbitmq_env() -> dict[str, str]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return dict(BROKER_ENV)


@pytest.fixture
def queue(unique_queue: str) -> Iterator[str]:
    """A queue of the test's own on the shared RabbitMQ, deleted after the test."""
    yield unique_queue
    with kombu.Connection(RABBITMQ_URL) as conn, contextlib.suppress(Exception):  # it may never have been declared
        conn.default_channel.queue_delete(unique_queue)


class OriginalWorker:
    """The original's worker process, its output in a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until the log has ``pattern`` (a regular expression); fail the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log)
            if match:
                return match
            if self.proc.poll() is not None:
                pytest.fail(f"the original worker exited ({self.proc.returncode}) before {pattern!r}:\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} in the original worker's log after {timeout}s:\n{self.log}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 60) -> OriginalWorker:
        self.wait_for_log(r" ready\.", timeout)
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGQUIT)  # cold shutdown: the test is over
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


class Original:
    """The original girder-worker 5.0.21, installed in a venv of its own as Girder sites have it."""

    def __init__(self, venv: Path, env: dict[str, str], tmp_path: Path) -> None:
        self.venv = venv
        self.env = clean_env(env)
        self.tmp_path = tmp_path
        self.workers: list[OriginalWorker] = []

    def run(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the original's Python; fail the test if it fails."""
        proc = subprocess.run(
            [str(venv_python(self.venv)), "-c", code],
            env=self.env,
            cwd=self.tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"the snippet failed in the original's venv ({proc.returncode}):\n{code}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}",
                pytrace=False,
            )
        return proc

    def start_worker(self, queue: str, *args: str) -> OriginalWorker:
        """``celery -A girder_worker.app worker -P solo -Q queue``, ready to take tasks.

        With ``C_FORCE_ROOT=true``, as the ecosystem's worker images set it: the original
        accepts pickle, so Celery refuses to run it as root otherwise (the tests run as root).
        """
        log_path = self.tmp_path / f"original-worker-{len(self.workers)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(self.venv / "bin" / "celery"), "-A", "girder_worker.app", "worker", "-l", "info",
                 "-P", "solo", "-Q", queue, "-n", f"original-{queue}@%h", *args],
                env={**self.env, "C_FORCE_ROOT": "true"},
                cwd=self.tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        worker = OriginalWorker(proc, log_path)
        self.workers.append(worker)
        return worker.wait_ready()


@pytest.fixture(scope="session")
def original_venv() -> Path:
    return ensure_original_venv()


@pytest.fixture
def original(original_venv: Path, rabbitmq_env: dict[str, str], tmp_path: Path) -> Iterator[Original]:
    runner = Original(original_venv, rabbitmq_env, tmp_path)
    yield runner
    for worker in runner.workers:
        worker.stop()

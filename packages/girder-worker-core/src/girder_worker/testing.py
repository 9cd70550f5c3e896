"""pytest fixtures for testing girder-worker plugins.

Enable them with one line in the plugin's top-level ``conftest.py``::

    pytest_plugins = ["girder_worker.testing"]

Then a test asks for:

``gw_worker``
    A real ``girder-worker`` process that runs the installed plugins' tasks on
    the embedded broker, in a temporary data directory. It is a :class:`Worker`:
    send tasks with ``gw_worker.delay(task, ...)``, read what a run reported to
    its job with ``gw_worker.job(result)``, cancel with ``gw_worker.cancel(result)``.
``gw_eager_app``
    An :class:`EagerApp`: tasks run in the test's own process when called with
    ``delay()``, which suits unit tests. ``gw_eager_app.job(result)`` reads what
    the run reported.

Both return a :class:`JobRecord` of :class:`Progress` reports. Override
``gw_worker_args`` (the worker's options, default ``-P threads -c 2``) or
``gw_worker_env`` (extra environment variables) in a ``conftest.py`` to change
how the worker runs. Both fixtures ignore the ``GIRDER_WORKER_*`` variables of
the shell that runs pytest.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .girder._job_recorder import JobRecord, JobRecorder, Progress

if TYPE_CHECKING:
    from ._app import GirderWorkerApp
    from .cancellation._cancel import CancelOutcome

__all__ = [
    "EagerApp",
    "JobRecord",
    "Progress",
    "Worker",
    "gw_eager_app",
    "gw_worker",
    "gw_worker_args",
    "gw_worker_env",
]

#: Seconds to wait for a worker to say it is ready.
READY_TIMEOUT = 60.0
_TASK_LINE = re.compile(r"^\s+\. (\S+)$")


def _without_our_variables(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("GIRDER_WORKER_")}


def _task_name(app: Any, task: Any) -> str:
    if isinstance(task, str):
        return task
    name = getattr(task, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a task or a task name, got {task!r}")
    return name


class _CurrentApp:
    """Makes an app Celery's current app, and puts the previous one back."""

    def __init__(self, app: Any) -> None:
        from ._celery_internals import current_app_if_set

        self._previous = current_app_if_set()
        app.set_current()

    def restore(self) -> None:
        from ._celery_internals import set_current_app

        set_current_app(self._previous)


class Worker:
    """A running ``girder-worker`` process and a client app that talks to it.

    Tasks sent through :meth:`delay` or :meth:`apply_async` carry a job, so what
    they report (status, output, progress) can be read back with :meth:`job`::

        result = gw_worker.delay(count_words, ["a b", "c"])
        assert result.get(timeout=60) == 3
        assert gw_worker.job(result).progress[-1].current == 2
    """

    def __init__(
        self, process: subprocess.Popen[bytes], log_path: Path, env: dict[str, str], app: Any, recorder: JobRecorder
    ) -> None:
        self.process = process
        self.log_path = log_path
        #: The ``GIRDER_WORKER_*`` variables the worker runs with; a client process
        #: given them talks to this worker.
        self.env = env
        #: The client app: Celery's current app while the test runs.
        self.app: GirderWorkerApp = app
        self._recorder = recorder

    @property
    def log(self) -> str:
        """Everything the worker process printed so far: banner, log lines, task output."""
        return self.log_path.read_text(errors="replace")

    @property
    def tasks(self) -> list[str]:
        """The task names in the worker banner's ``[tasks]`` list."""
        names: list[str] = []
        lines = iter(self.log.splitlines())
        for line in lines:
            if line.strip() == "[tasks]":
                break
        for line in lines:
            if line.strip() == "[plugins]":
                break
            match = _TASK_LINE.match(line)
            if match:
                names.append(match.group(1))
        return names

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the worker's output matches the regular expression ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log, re.MULTILINE)
            if match:
                return match
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.process.returncode}) before {pattern!r}:\n{self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} in the worker's output after {timeout:g} s:\n{self.log}")
            time.sleep(0.05)

    def delay(self, task: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Send ``task`` (a task or its name) to the worker, with a job; return its AsyncResult."""
        return self.apply_async(task, args, kwargs)

    def apply_async(
        self, task: Any, /, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        """Like Celery's ``apply_async``, for ``task`` (a task or its name), with a job."""
        name = _task_name(self.app, task)
        if name not in self.tasks:
            raise LookupError(
                f"the worker has no task {name!r} (its [tasks] are {', '.join(self.tasks) or 'none'}); "
                "is the plugin that defines it installed in this environment (pip install -e .), "
                "and does its task_imports() name the module?"
            )
        task_id = options.pop("task_id", None) or str(uuid.uuid4())
        headers = {**(options.pop("headers", None) or {}), "jobInfoSpec": self._recorder.job_info_spec(task_id)}
        args, kwargs = tuple(args), dict(kwargs or {})
        if name in self.app.tasks:  # its own options (queue, ...) apply
            return self.app.tasks[name].apply_async(args, kwargs, task_id=task_id, headers=headers, **options)
        return self.app.send_task(name, args, kwargs, task_id=task_id, headers=headers, **options)

    def job(self, result: Any, until: Callable[[JobRecord], object] | None = None, timeout: float = 60.0) -> JobRecord:
        """What the run of ``result`` reported to its job, once it finished.

        With ``until``, return as soon as ``until(record)`` is true instead, for
        example ``gw_worker.job(result, until=lambda job: job.progress)`` to wait
        for the first progress report. Raises TimeoutError after ``timeout``.
        """
        return self._recorder.wait(result.id, until or (lambda job: job.finished), timeout)

    def cancel(self, result: Any, reason: str = "cancelled") -> CancelOutcome:
        """Cancel the run of ``result``, as :func:`girder_worker.cancel` does."""
        from .cancellation._cancel import cancel

        return cancel(result, app=self.app, reason=reason)

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Stop the worker and every process it started; return its exit status.

        The fixture kills it (SIGKILL) after the test, which loses nothing a test
        needs, since its data directory is thrown away. ``stop(signal.SIGTERM)``
        asks for a warm shutdown instead: running tasks finish first.
        """
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                self.process.wait()
        return self.process.returncode


class EagerApp:
    """An app that runs tasks in the calling process, for unit tests.

    ``delay()`` runs the task at once and returns its finished result. While a
    task runs, ``self.job_manager`` records what it reports instead of sending it
    to Girder, and :meth:`job` reads it back::

        result = count_words.delay(["a b", "c"])
        assert result.get() == 3
        assert gw_eager_app.job(result).progress[-1].current == 2

    The job's log holds what the task wrote with ``self.job_manager.write``;
    ``print`` output is captured in a worker only.
    """

    def __init__(self, app: Any) -> None:
        #: The eager app: Celery's current app while the test runs.
        self.app: GirderWorkerApp = app
        self._jobs: dict[str, JobRecord] = {}

    def job(self, result: Any) -> JobRecord:
        """What the run of ``result`` reported to its job."""
        return self._jobs.get(result.id, JobRecord()).copy()

    def _connect(self) -> Callable[[], None]:
        from celery import signals

        from girder_worker_utils import JobStatus
        from girder_worker_utils.worker import JOB_MANAGER_ATTR

        uid = f"girder_worker.testing.eager.{id(self)}"

        def record(task: Any, status: JobStatus | None = None) -> JobRecord | None:
            request = getattr(task, "request", None)
            if getattr(task, "app", None) is not self.app or request is None or request.id is None:
                return None
            job = self._jobs.setdefault(request.id, JobRecord())
            if status is not None:
                job.statuses.append(status)
            return job

        def prerun(task: Any = None, **kwargs: Any) -> None:
            job = record(task, JobStatus.RUNNING)
            if job is not None and task.request.__dict__.get(JOB_MANAGER_ATTR) is None:
                task.request.__dict__[JOB_MANAGER_ATTR] = _RecordingJobManager(job)

        def success(sender: Any = None, **kwargs: Any) -> None:
            record(sender, JobStatus.SUCCESS)

        def failure(sender: Any = None, **kwargs: Any) -> None:
            record(sender, JobStatus.ERROR)

        def revoked(sender: Any = None, **kwargs: Any) -> None:
            record(sender, JobStatus.CANCELED)

        handlers: list[tuple[Any, Callable[..., None]]] = [
            (signals.task_prerun, prerun),
            (signals.task_success, success),
            (signals.task_failure, failure),
            (signals.task_revoked, revoked),
        ]
        for sig, handler in handlers:
            sig.connect(handler, weak=False, dispatch_uid=uid)

        def disconnect() -> None:
            for sig, _handler in handlers:
                sig.disconnect(dispatch_uid=uid)

        return disconnect


class _RecordingJobManager:
    """A ``JobManager`` that keeps the reports in a JobRecord."""

    def __init__(self, job: JobRecord) -> None:
        self._job = job

    def write(self, message: str | bytes, forceFlush: bool = False) -> None:  # noqa: N803
        if isinstance(message, bytes | bytearray):
            message = bytes(message).decode("utf-8", "replace")
        self._job.log += str(message)

    def updateProgress(  # noqa: N802
        self,
        total: float | None = None,
        current: float | None = None,
        message: str | None = None,
        forceFlush: bool = False,  # noqa: N803
    ) -> None:
        last = self._job.progress[-1] if self._job.progress else Progress(None, None, None)
        self._job.progress.append(
            Progress(
                last.current if current is None else float(current),
                last.total if total is None else float(total),
                last.message if message is None else str(message),
            )
        )

    def updateStatus(self, status: int) -> None:  # noqa: N802
        from girder_worker_utils import JobStatus

        self._job.statuses.append(JobStatus(status))

    def refreshStatus(self) -> int | None:  # noqa: N802
        return int(self._job.status) if self._job.status is not None else None

    def flush(self) -> None:
        pass


def _client_env(tmp_path: Path) -> dict[str, str]:
    return {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "girder-worker-data")}


@pytest.fixture
def gw_worker_args() -> Sequence[str]:
    """The ``girder-worker`` options of :func:`gw_worker`; override it to change them."""
    return ("-P", "threads", "-c", "2")


@pytest.fixture
def gw_worker_env() -> Mapping[str, str]:
    """Extra environment variables for :func:`gw_worker`'s worker and client app."""
    return {}


@pytest.fixture
def gw_worker(tmp_path: Path, gw_worker_args: Sequence[str], gw_worker_env: Mapping[str, str]) -> Iterator[Worker]:
    """A real ``girder-worker`` on the embedded broker; see :class:`Worker`."""
    from ._app import create_app
    from ._config import read_config

    env = {**_client_env(tmp_path), **gw_worker_env}
    log_path = tmp_path / "girder-worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "girder_worker", "-l", "info", *gw_worker_args],
            env={**_without_our_variables(os.environ), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    recorder = JobRecorder()
    app = create_app(read_config(env))
    current = _CurrentApp(app)
    worker = Worker(process, log_path, env, app, recorder)
    try:
        worker.wait_for_log(r" ready\.$", timeout=READY_TIMEOUT)
        yield worker
    finally:
        worker.stop()
        current.restore()
        app.close()
        recorder.close()


@pytest.fixture
def gw_eager_app(tmp_path: Path) -> Iterator[EagerApp]:
    """An app that runs tasks in the test's process; see :class:`EagerApp`."""
    from ._app import create_app
    from ._config import read_config

    app = create_app(read_config({**_client_env(tmp_path), "GIRDER_WORKER_TASK_ALWAYS_EAGER": "true"}))
    app.load_plugins()
    eager = EagerApp(app)
    disconnect = eager._connect()
    current = _CurrentApp(app)
    try:
        yield eager
    finally:
        current.restore()
        disconnect()
        app.close()

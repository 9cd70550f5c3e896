"""Pytest fixtures that run the REAL Girder 5.0.21 REST server for integration tests.

Girder (``girder``, ``girder-jobs``, ``girder-plugin-worker``, ``girder-client``,
all 5.0.21, plus ``mongomock``) is installed into a virtualenv of its own, with
OUR packages as a Girder site installs them: Girder requires ``girder-worker>=5``,
which our wheels answer (``girder-worker`` 6.0.0 -> ``girder-worker-core`` ->
``girder-worker-utils``), offered to pip by ``--find-links``, so Girder's worker
plugin and ``girder.tasks`` import our ``girder_worker.app``. The build checks
that pip chose ours and fails otherwise. The venv is built once and reused (see
:func:`ensure_girder_venv`); when only our sources changed, our freshly built
wheels are reinstalled in it (seconds). ``girder_serve.py`` runs in it on an
in-memory mongomock database, so every server starts empty.

Fixtures:

``girder_server_factory`` (session)
    ``girder_server_factory(broker_url, backend_url=None, env=None, fresh=False)``
    returns a running :class:`GirderServer` whose worker plugin sends Celery
    messages to ``broker_url``. Servers are shared through the session per
    (broker, backend, env), unless ``fresh=True``; all are stopped at the end.

``girder`` (function)
    The shared server on RabbitMQ ``amqp://guest:guest@127.0.0.1:5672//``. After
    each test it is resumed if the test left it paused, and checked to be alive.

If the server cannot be built or started, the fixture FAILS (never skips) with
the tail of the pip output or server log.

Environment:

``GIRDER_TEST_VENV``
    where the venv lives (default ``<repo>/.cache/girder-server-venv``)
``GIRDER_TEST_PYTHON``
    interpreter that creates the venv (default: the one running pytest)
``GIRDER_TEST_START_TIMEOUT``
    seconds to wait for the server to answer (default 90)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..ecosystem.venvs import build_wheels, tree_digest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
SERVE_SCRIPT = HERE / "girder_serve.py"

GIRDER_REQUIREMENTS = (
    "girder==5.0.21",
    "girder-jobs==5.0.21",
    "girder-plugin-worker==5.0.21",
    "girder-client==5.0.21",
    "mongomock==4.3.0",
)
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"

# Girder job statuses (girder-jobs, plus girder-plugin-worker's 82x).
INACTIVE, QUEUED, RUNNING, SUCCESS, ERROR, CANCELED = 0, 1, 2, 3, 4, 5
FETCHING_INPUT, CONVERTING_INPUT, CONVERTING_OUTPUT, PUSHING_OUTPUT, CANCELING = 820, 821, 822, 823, 824
FINAL_STATUSES = frozenset({SUCCESS, ERROR, CANCELED})

_MARKER = ".gw-test-inputs.json"
#: Our distributions, installed in the Girder venv as a site installs them.
OUR_PACKAGES = ("girder-worker-utils", "girder-worker-core", "girder-worker")
OUR_PACKAGES_DIR = REPO_ROOT / "packages"
_ADMIN = object()  # default for ``token=``: use the admin token


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- venv


def girder_venv_path(name: str = "girder-server-venv") -> Path:
    """Where a Girder venv lives: ``GIRDER_TEST_VENV`` for the default one, else under ``.cache``."""
    if name == "girder-server-venv" and os.environ.get("GIRDER_TEST_VENV"):
        return Path(os.environ["GIRDER_TEST_VENV"])
    return REPO_ROOT / ".cache" / name


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _our_version(package: str) -> str:
    """The version a package of ours declares (static in pyproject, or in its ``__about__.py``)."""
    folder = OUR_PACKAGES_DIR / package
    for path in (folder / "pyproject.toml", *folder.glob("src/*/__about__.py")):
        match = re.search(r'^(?:__)?version(?:__)? = "([^"]+)"', path.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    raise AssertionError(f"no version in {folder}")


def _read_marker(venv: Path) -> dict[str, Any]:
    try:
        found = json.loads((venv / _MARKER).read_text())
    except (OSError, ValueError):
        return {}
    # The interpreter link must still resolve (a removed pyenv Python breaks the venv).
    return found if isinstance(found, dict) and _venv_python(venv).exists() else {}


def _inputs_match(found: dict[str, Any], inputs: dict[str, Any], python: str | None) -> bool:
    """Whether the venv was built from ``inputs``.

    The interpreter matters only when ``GIRDER_TEST_PYTHON`` asks for one:
    otherwise whichever test environment built the venv first fixes it, so that
    hatch-test environments on different Pythons share one venv.
    """
    built = dict(found.get("inputs") or {})
    built_python = built.pop("python", None)
    if built != inputs:
        return False
    return not python or built_python == str(Path(python).resolve())


def ensure_girder_venv(extra: Iterable[str] = (), name: str = "girder-server-venv") -> Path:
    """Return the python of a Girder venv with our packages, building or refreshing it first if needed.

    ``extra`` requirements (Girder plugins such as ``girder-large-image``) go in
    a venv of their own, ``name``, so the shared server stays plain Girder.

    A venv is reused when its marker records a finished install of the same
    inputs: the requirement lines and a digest of our packages' ``pyproject.toml``
    and ``__about__.py`` (our dependencies and versions). When only our sources
    changed, our freshly built wheels are reinstalled without their dependencies.
    An exclusive ``fcntl`` lock next to the venv makes concurrent pytest sessions
    wait for one build instead of building twice.
    """
    venv = girder_venv_path(name)
    folders = [OUR_PACKAGES_DIR / package for package in OUR_PACKAGES]
    inputs = {
        "requirements": [*GIRDER_REQUIREMENTS, *extra],
        "metadata": tree_digest(folders, names=["pyproject.toml", "__about__.py"]),
    }
    sources = tree_digest(folders)
    wanted_python = os.environ.get("GIRDER_TEST_PYTHON") or None

    def current(found: dict[str, Any]) -> bool:
        return _inputs_match(found, inputs, wanted_python) and found.get("sources") == sources

    if current(_read_marker(venv)):
        return _venv_python(venv)

    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = _read_marker(venv)
            if not current(found):  # another session may have built it meanwhile
                _build_venv(venv, wanted_python or sys.executable, inputs, sources, refresh=_inputs_match(
                    found, inputs, wanted_python))  # fmt: skip
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _venv_python(venv)


def _run_step(cmd: list[str], what: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        proc = subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"building the Girder venv: {what} timed out: {' '.join(cmd)}\n{exc}", pytrace=False)
    if proc.returncode != 0:
        # This machine's pip.conf names index folders that may not exist; pip warns
        # about each of them. Drop that noise from the report.
        output = "\n".join(
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if not (line.startswith("WARNING: Location '") and line.endswith("' is ignored"))
        )
        pytest.fail(
            f"building the Girder venv: {what} failed ({proc.returncode}): {' '.join(cmd)}\n{_tail(output)}",
            pytrace=False,
        )
    return proc.stdout


def _build_venv(venv: Path, base_python: str, inputs: dict[str, Any], sources: str, refresh: bool) -> None:
    started = time.monotonic()
    python = str(_venv_python(venv))
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels_dir = venv.parent / f"{venv.name}-wheels"
    if wheels_dir.exists():
        shutil.rmtree(wheels_dir)
    wheels = [str(w) for w in build_wheels([OUR_PACKAGES_DIR / p for p in OUR_PACKAGES], wheels_dir)]
    if refresh:
        # Same requirements and dependencies: put this working tree's code in place of the old.
        _run_step([*pip, "install", "--no-deps", "--force-reinstall", *wheels], "reinstalling our wheels")
        how = "refreshed our wheels in"
    else:
        if venv.exists():
            shutil.rmtree(venv)
        _run_step([base_python, "-m", "venv", str(venv)], "creating the venv")
        # Girder requires girder-worker>=5: our girder-worker 6 from --find-links answers it.
        _run_step([*pip, "install", "--find-links", str(wheels_dir), *inputs["requirements"]], "pip install")
        how = "built"
    # Never serve with the original girder_worker by mistake (a newer one on the index, a stale wheel).
    show = f"import importlib.metadata as m, json; print(json.dumps({{d: m.version(d) for d in {OUR_PACKAGES!r}}}))"
    found = _run_step([python, "-c", show], "reading the installed versions")
    wanted = {package: _our_version(package) for package in OUR_PACKAGES}
    if json.loads(found) != wanted:
        pytest.fail(f"the Girder venv {venv} has {found.strip()}, not our {wanted}", pytrace=False)
    marker = {"inputs": {**inputs, "python": str(Path(base_python).resolve())}, "sources": sources}
    (venv / _MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    sys.stderr.write(f"\ngirder_server: {how} {venv} in {time.monotonic() - started:.1f}s\n")


@contextlib.contextmanager
def venv_worker(
    python: Path, env: Mapping[str, str], log: Path, args: Sequence[str] = ("-P", "solo"), timeout: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``girder-worker`` of a Girder venv (see :func:`ensure_girder_venv`) until the block ends.

    Its environment is this one without ``GIRDER_WORKER_*``, ``PYTHON*`` and
    ``VIRTUAL_ENV``, plus ``env``; its output goes to ``log``. The block starts once
    it says ``ready.``; afterwards it gets SIGTERM (SIGKILL after 30 s).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GIRDER_WORKER_", "PYTHON", "VIRTUAL_ENV"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(python.parent / "girder-worker"), "-l", "info", *args],
            env={**clean, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while "ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker of {python} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------------- server


class GirderServer:
    """A running Girder process and a small stdlib HTTP client for it.

    ``call`` and the job helpers use the admin token unless ``token=`` is given;
    pass ``token=None`` for an anonymous request.
    """

    def __init__(self, proc: subprocess.Popen, info: dict[str, Any], log_path: Path, run_dir: Path, broker_url: str):
        self.proc = proc
        self.pid: int = proc.pid
        self.api_url: str = info["api_url"]
        self.token: str = info["token"]
        self.login: str = info["login"]
        self.password: str = info["password"]
        self.user_id: str = info["user_id"]
        self.broker_url = broker_url
        self.log_path = log_path
        self.run_dir = run_dir
        self.paused = False
        self.start_seconds: float | None = None
        # Never route loopback requests through an http_proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"<GirderServer {self.api_url} pid={self.pid} broker={self.broker_url}>"

    # -- process control

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError as exc:
            return f"(no log: {exc})"

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def pause(self) -> None:
        """SIGSTOP the server: connections are accepted by the kernel but never answered."""
        if self.alive():
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        """SIGCONT the server after :meth:`pause`."""
        self._signal(signal.SIGCONT)
        self.paused = False

    @contextlib.contextmanager
    def paused_for(self) -> Iterator[GirderServer]:
        """``with girder.paused_for(): ...`` pauses the server for the block."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group (SIGKILL after ``timeout``) and wait for it."""
        if self.proc.returncode is None:
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)  # a stopped process handles SIGTERM only when continued
            self.paused = False
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout)
        # Anything left in the group (there should be nothing).
        self._signal(signal.SIGKILL)

    # -- HTTP

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        token: Any = _ADMIN,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """Call the REST API; return ``(status, decoded JSON or text)``.

        ``path`` is relative to ``api_url`` (``"job/<id>"``) or an absolute URL.
        ``params`` go in the query string for GET/DELETE and in a form-encoded
        body for POST/PUT/PATCH (Girder ignores JSON bodies); lists and dicts
        are JSON-encoded, booleans become ``true``/``false``.
        """
        if token is _ADMIN:
            token = self.token
        method = method.upper()
        url = path if path.startswith(("http://", "https://")) else f"{self.api_url}/{path.lstrip('/')}"
        encoded = urllib.parse.urlencode(_encode_params(params or {}))
        data = None
        headers = {"Accept": "application/json"}
        if method in ("POST", "PUT", "PATCH"):
            # Always send a body: CherryPy answers 411 without Content-Length.
            data = encoded.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif encoded:
            url += ("&" if "?" in url else "?") + encoded
        if token:
            headers["Girder-Token"] = token
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _decode(exc.read())

    def _ok(self, method: str, path: str, params: dict[str, Any] | None = None, token: Any = _ADMIN) -> Any:
        status, body = self.call(method, path, params, token=token)
        if status != 200:
            raise AssertionError(f"{method} {path} {params or ''} -> {status}: {body}")
        return body

    # -- jobs

    def create_job(
        self,
        title: str = "gw test job",
        type: str = "gw-test",
        handler: str | None = "worker_handler",
        **fields: Any,
    ) -> dict[str, Any]:
        """``POST /job``; other fields: ``args``, ``kwargs``, ``otherFields``, ``public``, ``token``."""
        token = fields.pop("token", _ADMIN)
        params = {"title": title, "type": type, **fields}
        if handler is not None:
            params["handler"] = handler
        return self._ok("POST", "job", params, token=token)

    def schedule(self, job_id: str) -> dict[str, Any]:
        """Test hook ``PUT /job/{id}/schedule`` (Job().scheduleJob); returns the reloaded job."""
        return self._ok("PUT", f"job/{job_id}/schedule")

    def get_job(self, job_id: str, token: Any = _ADMIN) -> dict[str, Any]:
        return self._ok("GET", f"job/{job_id}", token=token)

    def update_job(self, job_id: str, token: Any = _ADMIN, **params: Any) -> dict[str, Any]:
        """``PUT /job/{id}`` with ``status``, ``log``, ``progressTotal`` ... ."""
        return self._ok("PUT", f"job/{job_id}", params, token=token)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._ok("PUT", f"job/{job_id}/cancel")

    def delete_job(self, job_id: str) -> None:
        self._ok("DELETE", f"job/{job_id}")

    def wait_for_status(
        self, job_id: str, statuses: int | Iterable[int], timeout: float = 30.0, interval: float = 0.1
    ) -> dict[str, Any]:
        """Poll ``GET /job/{id}`` until its status is one of ``statuses``; return the job."""
        wanted = {statuses} if isinstance(statuses, int) else set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in wanted:
                return job
            if time.monotonic() >= deadline:
                history = [t.get("status") for t in job.get("timestamps") or []]
                raise AssertionError(
                    f"job {job_id} has status {job['status']} (history {history}), not one of "
                    f"{sorted(wanted)}, after {timeout}s; log: {''.join(job.get('log') or [])[-2000:]}"
                )
            time.sleep(interval)


def _encode_params(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (dict, list, tuple)):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _default_backend(broker_url: str) -> str | None:
    if broker_url.startswith(("amqp://", "pyamqp://")):
        return "rpc://"
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return None


def start_girder(
    broker_url: str,
    run_dir: Path,
    backend_url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    python: Path | None = None,
) -> GirderServer:
    """Start ``girder_serve.py`` in the Girder venv (or ``python``'s) and wait until it answers."""
    python = python or ensure_girder_venv()
    timeout = timeout or float(os.environ.get("GIRDER_TEST_START_TIMEOUT", "90"))
    run_dir.mkdir(parents=True, exist_ok=True)
    info_file = run_dir / "girder-info.json"
    log_path = run_dir / "girder.log"

    child_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("GIRDER_WORKER_")
    }
    child_env["GIRDER_WORKER_BROKER"] = broker_url
    backend_url = backend_url or _default_backend(broker_url)
    if backend_url:
        child_env["GIRDER_WORKER_BACKEND"] = backend_url
    child_env.update(env or {})

    # Bind a free loopback port here and hand the socket to the server, so the
    # port cannot be taken by someone else between choosing it and serving.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    started = time.monotonic()
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        cmd = [
            str(python),
            "-I",  # isolated: no PYTHON* variables, no script dir or user site on sys.path
            str(SERVE_SCRIPT),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--fd", str(sock.fileno()),
            "--info-file", str(info_file),
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=run_dir,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
                start_new_session=True,  # own process group, for pause/stop
            )
    finally:
        sock.close()

    def give_up(why: str) -> None:
        server_log = _tail(log_path.read_text(errors="replace")) if log_path.exists() else ""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"Girder did not start: {why}\n--- {log_path} (tail) ---\n{server_log}", pytrace=False)

    deadline = started + timeout
    server = None
    while True:
        if proc.poll() is not None:
            give_up(f"the server exited with code {proc.returncode}")
        if server is None and info_file.exists():
            server = GirderServer(proc, json.loads(info_file.read_text()), log_path, run_dir, broker_url)
        if server is not None:
            with contextlib.suppress(OSError):
                status, _ = server.call("GET", "system/version", token=None, timeout=2)
                if status == 200:
                    break
        if time.monotonic() > deadline:
            give_up(f"no answer from http://127.0.0.1:{port}/api/v1 after {timeout}s")
        time.sleep(0.1)
    server.start_seconds = time.monotonic() - started
    return server


class GirderServerFactory:
    """``factory(broker_url, backend_url=None, env=None, fresh=False, python=None) -> GirderServer``.

    ``python`` is the interpreter of another Girder venv (see :func:`ensure_girder_venv`'s ``extra``).
    """

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.servers: list[GirderServer] = []
        self._shared: dict[tuple, GirderServer] = {}

    def __call__(
        self,
        broker_url: str = RABBITMQ_URL,
        backend_url: str | None = None,
        env: dict[str, str] | None = None,
        fresh: bool = False,
        python: Path | None = None,
    ) -> GirderServer:
        key = (broker_url, backend_url, tuple(sorted((env or {}).items())), python)
        server = None if fresh else self._shared.get(key)
        if server is not None and server.alive():
            server.resume()
            return server
        run_dir = Path(tempfile.mkdtemp(prefix="girder-", dir=self.base_dir))
        server = start_girder(broker_url, run_dir, backend_url=backend_url, env=env, python=python)
        self.servers.append(server)
        if not fresh:
            self._shared[key] = server
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def girder_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., GirderServer]]:
    factory = GirderServerFactory(tmp_path_factory.mktemp("girder"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def girder(girder_server_factory: GirderServerFactory) -> Iterator[GirderServer]:
    """The session's Girder on RabbitMQ ``amqp://guest:guest@127.0.0.1:5672//``."""
    server = girder_server_factory(RABBITMQ_URL)
    yield server
    if server.paused:
        server.resume()
    if not server.alive():
        pytest.fail(f"Girder (pid {server.pid}) died during the test:\n{server.log_tail()}", pytrace=False)

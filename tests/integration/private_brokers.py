"""Private RabbitMQ and Redis servers that a test may stop and restart.

The machine's shared brokers (RabbitMQ on 5672, Redis on 6379) serve every other
test and engineer, so outage tests never touch them: each private server runs on
free loopback ports with its data, logs and configuration in a temporary folder.

- :class:`PrivateRedis` runs ``redis-server`` with an append-only file synced on
  every write (``--appendonly yes --appendfsync always``), which is what lets
  queued messages survive a restart: a Redis without AOF (or RDB snapshots) comes
  back empty.
- :class:`PrivateRabbitMQ` runs a second RabbitMQ node, ``gwtest-<port>@localhost``,
  with its own Erlang cookie (a private ``HOME``), node and distribution ports,
  Mnesia and log folders, configuration file (``consumer_timeout`` on request) and
  an empty plugin list (no management plugin, so no clash on port 15672). Every
  ``rabbitmqctl`` call names this node with ``-n``; the shared node
  ``rabbit@localhost`` is never addressed. It runs as root here, which RabbitMQ
  allows; names resolve through ``localhost`` in /etc/hosts.

The fixtures stop every server at the end of its test whatever the outcome. If
pytest itself is killed, ``PR_SET_PDEATHSIG`` terminates the child it started,
and the next fixture use kills what is still left: each server carries
``GWTEST_OWNER_PID`` in its environment, and servers whose owner is gone are
swept. Measured on the 2-core test machine: RabbitMQ starts in 4-8 s and stops
in 1-4 s, Redis starts and stops in about 0.1 s.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = ["PrivateRabbitMQ", "PrivateRedis", "free_port", "private_rabbitmq", "private_redis", "sweep_orphans"]

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it when the test process dies.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def sweep_orphans() -> list[int]:
    """Kill the process groups of private servers whose pytest process is gone."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        owner = next((v for v in environ if v.startswith(b"GWTEST_OWNER_PID=")), None)
        if owner is None or Path(f"/proc/{int(owner.partition(b'=')[2])}").exists():
            continue
        try:
            os.killpg(os.getpgid(int(proc.name)), signal.SIGKILL)
            killed.append(int(proc.name))
        except ProcessLookupError:
            pass
    return killed


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Server:
    """A server process started in its own session, logging to a file."""

    name = "server"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: list[float] = []
        self.stop_seconds: list[float] = []

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ if env is None else env, GWTEST_OWNER_PID=str(os.getpid()))
        with (self.dir / f"{self.name}.out").open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                env=full_env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server, stay down ``down_seconds``, start it again with the same data."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class PrivateRedis(_Server):
    """``redis-server`` on a free port with an fsync-always append-only file."""

    name = "redis"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        began = time.monotonic()
        self._spawn(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
            ]
        )
        deadline = began + 30
        while not _port_open(self.port):
            if not self.running or time.monotonic() > deadline:
                pytest.fail(f"private Redis on port {self.port} did not start:\n{self.output}")
            time.sleep(0.05)
        self.start_seconds.append(time.monotonic() - began)

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file out and exits."""
        if not self.running:
            return
        began = time.monotonic()
        assert self.proc is not None
        self.proc.terminate()
        self._wait(30)
        self.stop_seconds.append(time.monotonic() - began)

    @property
    def output(self) -> str:
        path = self.dir / f"{self.name}.out"
        return path.read_text(errors="replace") if path.exists() else ""


class PrivateRabbitMQ(_Server):
    """A second RabbitMQ node, ``gwtest-<port>@localhost``, in its own folder."""

    name = "rabbitmq"

    def __init__(self, directory: Path, consumer_timeout_ms: int | None = None) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"gwtest-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.pid_file = directory / "rabbitmq.pid"
        home = directory / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        config = [f"listeners.tcp.default = 127.0.0.1:{self.port}", "loopback_users = none"]
        if consumer_timeout_ms is not None:
            config.append(f"consumer_timeout = {consumer_timeout_ms}")
        (directory / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")  # not the shared node's /etc/rabbitmq one
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # the node's and rabbitmqctl's Erlang cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> ARGS``; never the shared node."""
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        began = time.monotonic()
        self.pid_file.unlink(missing_ok=True)
        self._spawn([str(RABBITMQ_BIN / "rabbitmq-server")], self.env)
        waited = self.ctl("wait", str(self.pid_file), "--timeout", "90", timeout=120)
        if waited.returncode != 0 or not _port_open(self.port):
            self.stop()
            pytest.fail(f"private RabbitMQ {self.node} did not start:\n{waited.stdout}{waited.stderr}\n{self.log}")
        self.start_seconds.append(time.monotonic() - began)

    def stop(self) -> None:
        """``rabbitmqctl stop``: a clean shutdown, waited for until the process is gone."""
        if not self.running:
            return
        began = time.monotonic()
        self.ctl("stop", str(self.pid_file), timeout=60)
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()  # the launcher shell: it stops the node too
        self._wait(30)
        self.stop_seconds.append(time.monotonic() - began)

    @property
    def log(self) -> str:
        path = self.dir / "log" / f"{self.node}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], PrivateRedis]]:
    """``private_redis()``: start a private Redis; it is stopped after the test."""
    sweep_orphans()
    servers: list[PrivateRedis] = []

    def start() -> PrivateRedis:
        server = PrivateRedis(tmp_path_factory.mktemp("redis"))
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PrivateRabbitMQ]]:
    """``private_rabbitmq(consumer_timeout_ms=None)``: start a private node; stopped after the test."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.fail(f"RabbitMQ is not installed ({RABBITMQ_BIN / 'rabbitmq-server'} is missing)", pytrace=False)
    sweep_orphans()
    servers: list[PrivateRabbitMQ] = []

    def start(consumer_timeout_ms: int | None = None) -> PrivateRabbitMQ:
        server = PrivateRabbitMQ(tmp_path_factory.mktemp("rabbitmq"), consumer_timeout_ms)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()

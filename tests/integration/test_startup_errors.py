"""A worker or client started against an unreachable or refusing broker or backend.

Real servers each time: a closed port for "down" (a private Redis that is started
later for "comes back"), the machine's RabbitMQ with a wrong password or an unknown
virtual host, a private Redis with ``requirepass``. Each test asserts the worker's
whole stderr: its line count, no traceback, the URL with its password masked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from girder_worker import PublishError

from ..conftest import RABBITMQ_URL, clean_env, require_service, wait_for
from .private_brokers import PrivateRedis, _port_open, free_port

SECRET = "s3cret-pw"
# The lines docs/outages.rst shows (tests/docs/test_outages_page.py checks they are there).
REFUSED_LOGIN = (
    "girder-worker: error: the broker at amqp://guest:**@127.0.0.1:5672// refused the login ((0, 0): (403) "
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker "
    "logfile.); fix the user name and password in GIRDER_WORKER_BROKER"
)
UNKNOWN_VHOST = (
    "girder-worker: error: the broker at amqp://guest:**@127.0.0.1:5672/gwtest-novhost refused the virtual "
    "host (Connection.open: (530) NOT_ALLOWED - vhost gwtest-novhost not found); fix the virtual host in "
    "GIRDER_WORKER_BROKER (the part after the last '/'; '//' is the default '/'), or create it and grant "
    "the user access (rabbitmqctl add_vhost, set_permissions)"
)


def run_worker(env: dict[str, str], tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``girder-worker -P solo`` until it exits; its output, stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "girder_worker", "-l", "info", "-P", "solo", "-Q", "gwtest-startup"],
        env=clean_env({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data"), **env}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clean(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    assert SECRET not in stderr
    return stderr.splitlines()


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_an_unreachable_broker_is_one_line_per_attempt_and_bounded_retries_exit_1(scheme, closed_port, tmp_path):
    url = (
        f"redis://:{SECRET}@127.0.0.1:{closed_port}/0"
        if scheme == "redis"
        else f"amqp://guest:{SECRET}@127.0.0.1:{closed_port}//"
    )
    shown = url.replace(SECRET, "**")
    out = run_worker({"GIRDER_WORKER_BROKER": url, "GIRDER_WORKER_BROKER_MAX_RETRIES": "1"}, tmp_path)

    assert out.returncode == 1
    first, last = assert_clean(out.stderr)
    refused = f"Error 111 connecting to 127.0.0.1:{closed_port}. Connection refused."
    problem = refused if scheme == "redis" else "[Errno 111] Connection refused"
    assert first == (
        f"girder-worker: cannot reach the broker at {shown} ({problem}); start it or fix GIRDER_WORKER_BROKER; "
        "retrying in 2 s (attempt 1, of 2)"
    )
    assert last == (
        f"girder-worker: error: gave up on the broker at {shown} after 2 attempt(s) ({problem}); start it or "
        "fix GIRDER_WORKER_BROKER; GIRDER_WORKER_BROKER_MAX_RETRIES=1 bounds the retries"
    )
    assert out.stdout == ""  # no banner: the worker never started


@pytest.fixture
def later_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis on a port of its own, not started yet."""
    server = PrivateRedis(tmp_path / "later-redis")
    server.dir.mkdir()
    yield server
    server.stop()


def test_a_worker_retries_for_ever_by_default_and_starts_when_redis_comes(later_redis, start_worker):
    worker = start_worker({"GIRDER_WORKER_BROKER": later_redis.url}, "-P", "solo", plugins=(), ready=False)
    worker.wait_for_log(r"\(attempt 2, no limit\)")
    assert worker.proc is not None
    assert worker.proc.poll() is None  # still trying

    later_redis.start()
    worker.wait_ready()

    before_banner = worker.log.split(" -------------- ", 1)[0]
    attempts = [line for line in before_banner.splitlines() if line.startswith("girder-worker: ")]
    assert len(attempts) >= 2
    for n, line in enumerate(attempts, 1):
        assert line.startswith(f"girder-worker: cannot reach the broker at {later_redis.url} (Error 111 ")
        assert line.endswith(f"(attempt {n}, no limit)")
    assert "Traceback" not in worker.log


def test_a_wrong_rabbitmq_password_is_one_line_and_exit_2(tmp_path):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    url = RABBITMQ_URL.replace("guest:guest", f"guest:{SECRET}")
    out = run_worker({"GIRDER_WORKER_BROKER": url, "GIRDER_WORKER_BACKEND": "redis://127.0.0.1:6379/1"}, tmp_path)

    assert out.returncode == 2
    assert assert_clean(out.stderr) == [REFUSED_LOGIN]


def test_an_unknown_rabbitmq_vhost_is_one_line_and_exit_2(tmp_path):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    out = run_worker({"GIRDER_WORKER_BROKER": "amqp://guest:guest@127.0.0.1:5672/gwtest-novhost"}, tmp_path)

    assert out.returncode == 2
    assert assert_clean(out.stderr) == [UNKNOWN_VHOST]


class PasswordRedis(PrivateRedis):
    """A private Redis that requires a password."""

    name = "redis-auth"

    def start(self) -> None:
        self._spawn(
            [
                *(shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.dir), "--save", "", "--appendonly", "no", "--requirepass", "right-pw"),
            ]
        )
        wait_for(lambda: _port_open(self.port), 30, "the private Redis to listen")


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[PasswordRedis]:
    server = PasswordRedis(tmp_path / "auth-redis")
    server.dir.mkdir()
    server.start()
    yield server
    server.stop()


def test_a_wrong_redis_password_is_one_line_and_exit_2(password_redis, tmp_path):
    url = f"redis://:{SECRET}@127.0.0.1:{password_redis.port}/0"
    out = run_worker({"GIRDER_WORKER_BROKER": url}, tmp_path)

    assert out.returncode == 2
    lines = assert_clean(out.stderr)
    assert len(lines) == 1
    assert re.fullmatch(
        rf"girder-worker: error: the broker at redis://:\*\*@127\.0\.0\.1:{password_redis.port}/0 refused the "
        r"login \(.*(WRONGPASS|invalid).*\); fix the user name and password in GIRDER_WORKER_BROKER",
        lines[0],
    ), lines[0]


def test_a_redis_without_a_password_accepts_any_password(tmp_path):
    """What the machine's Redis (no password set) does with one: redis-py 8 speaks RESP3, whose
    HELLO ... AUTH default <password> a password-less default user accepts, so the worker starts."""
    from redis import Redis

    assert Redis.from_url(f"redis://:{SECRET}@127.0.0.1:6379/0").ping() is True


def test_an_unreachable_result_backend_names_its_variable(closed_port, tmp_path):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    env = {
        "GIRDER_WORKER_BROKER": RABBITMQ_URL,
        "GIRDER_WORKER_BACKEND": f"redis://:{SECRET}@127.0.0.1:{closed_port}/1",
        "GIRDER_WORKER_BROKER_MAX_RETRIES": "0",
    }
    out = run_worker(env, tmp_path)

    assert out.returncode == 1
    assert assert_clean(out.stderr) == [
        f"girder-worker: error: gave up on the result backend at redis://:**@127.0.0.1:{closed_port}/1 after 1 "
        f"attempt(s) (Error 111 connecting to 127.0.0.1:{closed_port}. Connection refused.); start it or fix "
        "GIRDER_WORKER_BACKEND; GIRDER_WORKER_BROKER_MAX_RETRIES=0 bounds the retries"
    ]


# -- clients ----------------------------------------------------------------------

CLIENT = """
import sys
from girder_worker.app import app
app.send_task("gwexample.analyses.tasks.fibonacci", args=[5], queue="gwtest-startup")
"""


@pytest.mark.parametrize(
    ("env", "role", "shown", "variable"),
    [
        ({"GIRDER_WORKER_BROKER": "redis://:{secret}@127.0.0.1:{port}/0"}, "broker", "redis://:**@", "BROKER"),
        ({"GIRDER_WORKER_BROKER": "amqp://guest:{secret}@127.0.0.1:{port}//"}, "broker", "amqp://guest:**@", "BROKER"),
        (
            {"GIRDER_WORKER_BROKER": RABBITMQ_URL, "GIRDER_WORKER_BACKEND": "redis://:{secret}@127.0.0.1:{port}/1"},
            "result backend",
            "redis://:**@",
            "BACKEND",
        ),
    ],
    ids=["redis", "rabbitmq", "redis-backend"],
)
def test_a_client_gets_one_line_within_its_publish_window(env, role, shown, variable, closed_port, tmp_path):
    env = {k: v.format(secret=SECRET, port=closed_port) for k, v in env.items()}
    out = subprocess.run(
        [sys.executable, "-c", CLIENT],
        env=clean_env(env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # the window is about 10 s; Celery's own took 20 s and more
        check=False,
    )

    assert out.returncode == 1
    lines = assert_clean(out.stderr.replace("Traceback (most recent call last):", "", 1))
    assert "During handling" not in out.stderr
    assert len(lines) <= 6, out.stderr  # the caller's frame, ours, and the error
    assert re.fullmatch(
        rf"girder_worker\.broker\._outages\.PublishError: task gwexample\.analyses\.tasks\.fibonacci was not sent: the "
        rf"{role} at {re.escape(shown)}127\.0\.0\.1:{closed_port}/\S* is unreachable \(.*[Cc]onnection refused\.?\); "
        rf"start it or fix GIRDER_WORKER_{variable}, then publish the task again",
        lines[-1],
    ), lines[-1]


def test_publish_error_is_kombus_operational_error(closed_port, client_app):
    from kombu.exceptions import OperationalError

    app = client_app(
        {
            "GIRDER_WORKER_BROKER": f"amqp://guest:guest@127.0.0.1:{closed_port}//",
            "GIRDER_WORKER_BACKEND": "redis://127.0.0.1:6379/1",
            "GIRDER_WORKER_BROKER_TRANSPORT_OPTIONS": '{"connect_retries_timeout": 1}',
        }
    )
    with pytest.raises(PublishError) as caught:
        app.send_task("gwexample.analyses.tasks.fibonacci", args=[5])

    assert isinstance(caught.value, OperationalError)  # what callers caught before
    assert "\n" not in str(caught.value)

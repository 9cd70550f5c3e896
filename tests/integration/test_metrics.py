"""The Prometheus endpoint of real workers, scraped over HTTP while and after they run tasks.

Each test runs a worker on a private Redis that has a password, with
``GIRDER_WORKER_METRICS_PORT=0`` (any free port, which the worker logs), sends tasks
that succeed, fail, are cancelled, terminated or lost, and reads ``/metrics`` as
Prometheus would.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from girder_worker import cancel

from ..conftest import ROOT, wait_for
from .private_brokers import free_port

P = "girder_worker_"
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture
def redis_with_password(private_redis: Any) -> str:
    """The URL of a private Redis that requires a password, the password in it."""
    server = private_redis()
    password = f"pw-{secrets.token_hex(8)}"
    redis.Redis(host="127.0.0.1", port=server.port).config_set("requirepass", password)
    return f"redis://:{password}@127.0.0.1:{server.port}/0"


def endpoint(worker: Any) -> str:
    port = worker.wait_for_log(r"metrics at http://127\.0\.0\.1:(\d+)/metrics").group(1)
    return f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((P + name, frozenset(labels.items())), 0.0)


def wait_for_counts(url: str, expected: dict[tuple[str, str], float]) -> dict[Any, float]:
    """Scrape until every ``(metric, task)`` of ``expected`` has its value; return the last scrape.

    The counts of a run are written right after its result, so a client may see
    the result a moment before the scrape shows it.
    """
    last: dict[Any, float] = {}

    def matches() -> bool:
        nonlocal last
        last = samples(scrape(url))
        return all(value(last, name, task=task) == count for (name, task), count in expected.items())

    with contextlib.suppress(pytest.fail.Exception):  # the assertion below shows what differs
        wait_for(matches, timeout=30, what="the expected metrics")
    got = {key: value(last, key[0], task=key[1]) for key in expected}
    assert got == expected
    return last


def test_a_prefork_worker_sums_what_its_pool_processes_count(redis_with_password, start_worker, client_app, tmp_path):
    env = {"GIRDER_WORKER_BROKER": redis_with_password, "GIRDER_WORKER_METRICS_PORT": "0"}
    worker = start_worker(env, "-P", "prefork", "-c", "2")
    url = endpoint(worker)
    app = client_app(env)

    # Two runs at once: one in each pool process.
    pids = {r.get(timeout=60)["pid"] for r in [app.send_task("gwtest.whoami", args=[1.5]) for _ in range(2)]}
    assert len(pids) == 2
    assert [app.send_task("gwtest.add", args=[i, 1]).get(timeout=60) for i in range(3)] == [1, 2, 3]
    failures = [app.send_task("gwtest.fail", args=["no"]) for _ in range(2)]
    for result in failures:
        with pytest.raises(ValueError, match=r"^no$"):
            result.get(timeout=60)
    marker = tmp_path / "cooperative"
    cancelled = app.send_task("gwtest.cooperative", args=[str(marker)])
    wait_for(lambda: marker.exists(), what="the cooperative task to start")
    cancel(cancelled, app=app)
    wait_for(lambda: cancelled.state == "REVOKED", what="the cancelled task to end REVOKED")
    # It kills its own pool process at every run: lost 3 times, delivered again twice, then failed.
    crashing = app.send_task("gwtest.delivery.crash", args=[str(tmp_path / "crash.txt")])
    wait_for(lambda: crashing.state == "FAILURE", timeout=90, what="the crashing task to fail")

    scraped = wait_for_counts(
        url,
        {
            ("tasks_started_total", "gwtest.whoami"): 2,
            ("tasks_succeeded_total", "gwtest.whoami"): 2,
            ("tasks_started_total", "gwtest.add"): 3,
            ("tasks_succeeded_total", "gwtest.add"): 3,
            ("tasks_failed_total", "gwtest.fail"): 2,
            ("tasks_revoked_total", "gwtest.cooperative"): 1,
            ("cancels_received_total", "gwtest.cooperative"): 1,
            ("cancel_latency_seconds_count", "gwtest.cooperative"): 1,
            ("tasks_started_total", "gwtest.delivery.crash"): 3,
            ("tasks_lost_total", "gwtest.delivery.crash"): 3,
            ("tasks_redelivered_total", "gwtest.delivery.crash"): 2,
            ("tasks_failed_total", "gwtest.delivery.crash"): 1,
            ("task_runtime_seconds_count", "gwtest.add"): 3,
            ("task_queue_wait_seconds_count", "gwtest.add"): 3,
            ("task_runtime_seconds_count", "gwtest.whoami"): 2,
        },
    )
    # The two whoami runs took 1.5 s each, in two processes: their times add up.
    assert value(scraped, "task_runtime_seconds_sum", task="gwtest.whoami") >= 3.0
    assert value(scraped, "task_runtime_seconds_bucket", task="gwtest.whoami", le="1.0") == 0
    assert value(scraped, "task_runtime_seconds_bucket", task="gwtest.whoami", le="+Inf") == 2
    assert value(scraped, "tasks_succeeded_total", task="gwtest.fail") == 0

    password = redis_with_password.split(":")[2].split("@")[0]
    text = scrape(url)
    assert password not in text
    assert password not in worker.log


def test_a_solo_worker_counts_cancels_and_terminations(redis_with_password, start_worker, client_app, tmp_path):
    env = {"GIRDER_WORKER_BROKER": redis_with_password, "GIRDER_WORKER_METRICS_PORT": "0"}
    worker = start_worker(env, "-P", "solo")
    url = endpoint(worker)
    app = client_app(env)

    assert app.send_task("gwtest.add", args=[2, 3]).get(timeout=60) == 5
    with pytest.raises(ValueError, match=r"^boom$"):
        app.send_task("gwtest.fail").get(timeout=60)
    marker = tmp_path / "cooperative"
    cooperative = app.send_task("gwtest.cooperative", args=[str(marker)])
    wait_for(lambda: marker.exists(), what="the cooperative task to start")
    # Scraped while the task runs in the worker's only thread.
    assert value(samples(scrape(url)), "tasks_started_total", task="gwtest.cooperative") == 1
    cancel(cooperative, app=app)
    wait_for(lambda: cooperative.state == "REVOKED", what="the cooperative task to end REVOKED")
    marker = tmp_path / "stubborn"
    stubborn = app.send_task("gwtest.stubborn", args=[str(marker)])  # ignores its cancel: terminated after 1 s
    wait_for(lambda: marker.exists(), what="the stubborn task to start")
    cancel(stubborn, app=app)
    wait_for(lambda: stubborn.state == "REVOKED", what="the stubborn task to end REVOKED")

    wait_for_counts(
        url,
        {
            ("tasks_succeeded_total", "gwtest.add"): 1,
            ("tasks_failed_total", "gwtest.fail"): 1,
            ("tasks_revoked_total", "gwtest.cooperative"): 1,
            ("cancels_received_total", "gwtest.cooperative"): 1,
            ("cancel_latency_seconds_count", "gwtest.cooperative"): 1,
            ("tasks_revoked_total", "gwtest.stubborn"): 1,
            ("cancels_received_total", "gwtest.stubborn"): 1,
            ("tasks_terminated_total", "gwtest.stubborn"): 1,
            ("cancel_latency_seconds_count", "gwtest.stubborn"): 0,
            ("task_runtime_seconds_count", "gwtest.add"): 1,
            ("task_queue_wait_seconds_count", "gwtest.add"): 1,
        },
    )

    # The metrics page's example, run as its reader would.
    example = subprocess.run(
        [sys.executable, str(EXAMPLES / "metrics_query.py"), url], capture_output=True, text=True, timeout=60
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout == (EXAMPLES / "metrics_query_output.txt").read_text()


def test_refused_messages_are_counted_without_their_unknown_names(redis_with_password, start_worker, client_app):
    env = {"GIRDER_WORKER_BROKER": redis_with_password, "GIRDER_WORKER_METRICS_PORT": "0"}
    worker = start_worker(env, "-P", "solo")
    url = endpoint(worker)
    app = client_app(env)

    app.send_task("gwtest.add", args=[1, 2, 3])  # one argument too many
    for i in range(3):
        app.send_task(f"no.such.task{i}")
    assert app.send_task("gwtest.add", args=[1, 2]).get(timeout=60) == 3

    scraped = wait_for_counts(
        url, {("messages_refused_total", "gwtest.add"): 1, ("messages_refused_total", "(unregistered)"): 3}
    )
    assert not [key for key in scraped if "no.such.task" in str(key)]


def test_a_taken_port_stops_the_worker_with_one_line(redis_with_password, start_worker):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"GIRDER_WORKER_BROKER": redis_with_password, "GIRDER_WORKER_METRICS_PORT": str(port)}
        worker = start_worker(env, "-P", "solo", ready=False)

        assert worker.wait_exit(timeout=60) == 2
    [line] = [line for line in worker.log.splitlines() if "GIRDER_WORKER_METRICS_PORT" in line]
    assert line.endswith(
        f"GIRDER_WORKER_METRICS_PORT: cannot serve metrics on 127.0.0.1:{port} (Address already in use); "
        "choose a free port (each worker on a host needs its own) or unset the variable"
    )
    assert "Traceback" not in worker.log


def test_without_prometheus_client_the_worker_says_which_extra_to_install(tmp_path):
    # A stand-in for an environment without prometheus-client: a package of that
    # name, first on the path, that cannot be imported, as a missing one cannot.
    missing = tmp_path / "without" / "prometheus_client"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'prometheus_client'\")\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIRDER_WORKER_")}
    env.update(
        PYTHONPATH=str(missing.parent),
        GIRDER_WORKER_DATA_DIR=str(tmp_path / "data"),
        GIRDER_WORKER_METRICS_PORT="0",
    )
    result = subprocess.run(
        [sys.executable, "-m", "girder_worker", "-l", "info", "-P", "solo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )

    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "prometheus_client" in line]
    assert len(lines) == 1
    assert lines[0].endswith(
        "GIRDER_WORKER_METRICS_PORT is set, but prometheus_client is not installed; "
        "install it with `pip install girder-worker-core[metrics]`, or unset the variable"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_metrics_are_off_unless_a_port_is_set(start_worker, tmp_path):
    worker = start_worker({"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}, "-P", "solo")

    assert not re.search(r"metrics at http", worker.log)


def test_girder_reports_that_get_no_answer_are_counted(redis_with_password, start_worker, client_app):
    env = {
        "GIRDER_WORKER_BROKER": redis_with_password,
        "GIRDER_WORKER_METRICS_PORT": "0",
        "GIRDER_WORKER_REPORT_RETRY_SECONDS": "5",
    }
    worker = start_worker(env, "-P", "solo")
    url = endpoint(worker)
    app = client_app(env)
    nobody = f"http://127.0.0.1:{free_port()}/api/v1"  # no Girder listens there
    job = {"method": "PUT", "url": f"{nobody}/job/j1", "reference": "j1", "headers": {"Girder-Token": "t" * 64}}

    assert app.send_task("gwtest.add", args=[2, 3], headers={"jobInfoSpec": job}).get(timeout=60) == 5

    # Its reports wait for Girder (5 s here), then they are given up.
    wait_for(lambda: value(samples(scrape(url)), "girder_report_backlog") == 1, what="a backlog of one job")

    def reports_given_up() -> dict[Any, float] | None:
        scraped = samples(scrape(url))
        given_up = value(scraped, "girder_reports_dropped_total") == 1
        return scraped if given_up and value(scraped, "girder_report_backlog") == 0 else None

    scraped = wait_for(reports_given_up, timeout=60, what="the job's reports to be given up")
    assert isinstance(scraped, dict)
    assert value(scraped, "girder_report_failures_total") >= 2  # RUNNING, then the retries
    assert value(scraped, "tasks_succeeded_total", task="gwtest.add") == 1
    assert "t" * 64 not in scrape(url)

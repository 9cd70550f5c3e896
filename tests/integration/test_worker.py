"""The worker end to end: discovery, the example client, queues, on every broker."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from ..conftest import ROOT, clean_env
from .conftest import purge_queue

POOLS = {"embedded": "solo", "rabbitmq": "prefork", "redis": "threads"}


def run_example_client(env):
    """Run gwexample's example_client.py as a user would, with the worker's environment."""
    return subprocess.run(
        [sys.executable, str(ROOT / "packages/gwexample/example_client.py")],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_banner_lists_plugin_tasks_and_example_client_prints_121393(broker, env_for, start_worker):
    env = env_for(broker)
    worker = start_worker(env, "-P", POOLS[broker], plugins=())
    assert "  . gwexample.analyses.tasks.fibonacci" in worker.log
    assert "  . gwexample (gwexample 1.0.0" in worker.log

    client = run_example_client(env)
    assert client.returncode == 0, client.stderr
    assert client.stdout == "121393\n"


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_example_client_on_embedded_broker_in_each_pool(pool, env_for, start_worker):
    env = env_for("embedded")
    start_worker(env, "-P", pool, "-c", "2", plugins=())
    client = run_example_client(env)
    assert client.stdout == "121393\n", client.stderr


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_what_the_worker_loaded_before_its_pool_started_is_frozen_in_the_process_that_runs_tasks(
    pool, env_for, start_worker, client_app, unique_queue
):
    """gc.freeze before the pool forks: a pool process's collections leave the pages it shares
    with the main process alone (the worker's memory, docs/deployment.rst)."""
    env = env_for("redis")
    start_worker(env, "-P", pool, "-c", "1", "-Q", unique_queue)

    frozen = client_app(env).send_task("gwtest.gc_frozen", queue=unique_queue).get(timeout=30)

    assert frozen > 10_000  # the modules of Celery, kombu, girder-worker and the plugins


def test_a_solo_worker_does_not_load_the_docker_sdk_or_billiards_pool_to_start(
    env_for, start_worker, client_app, unique_queue
):
    """The reaper talks to the local Docker socket with the standard library; the pool check
    does not import the prefork pool (together ~0.5 s of a start, ~5 MB, docs/deployment.rst)."""
    env = env_for("embedded")
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue)
    assert ". docker (girder-worker-core" in worker.log  # the docker plugin and its reaper are on

    modules = ["docker", "requests", "celery.concurrency.prefork", "girder_worker.docker._engine"]
    loaded = client_app(env).send_task("gwtest.modules_loaded", args=[modules], queue=unique_queue).get(timeout=30)

    assert loaded == ["girder_worker.docker._engine"]


def test_banner_masks_the_broker_password(env_for, start_worker):
    worker = start_worker(env_for("rabbitmq"), "-P", "solo", plugins=())
    assert "amqp://guest:**@127.0.0.1:5672//" in worker.log
    assert "guest:guest" not in worker.log


def test_embedded_banner_says_no_server_is_needed(env_for, start_worker, tmp_path):
    worker = start_worker(env_for("embedded"), "-P", "solo", plugins=())
    assert f"embedded, no server needed; messages and results in {tmp_path / 'data'}" in worker.log


def test_two_workers_on_one_queue_share_the_work(broker, env_for, start_worker, client_app, unique_queue):
    env = env_for(broker)
    for name in ("alpha", "beta"):
        start_worker(env, "-P", "solo", "-Q", unique_queue, "-n", f"{name}-{unique_queue}@%h")
    app = client_app(env)
    try:
        results = [app.send_task("gwtest.whoami", kwargs={"pause": 0.2}, queue=unique_queue) for _ in range(12)]
        hosts = Counter(r.get(timeout=60)["hostname"].split("-")[0] for r in results)
    finally:
        purge_queue(app, unique_queue)
    assert set(hosts) == {"alpha", "beta"}, hosts
    assert sum(hosts.values()) == 12


def test_queue_option_routes_a_task_to_the_worker_that_consumes_it(env_for, start_worker, client_app, unique_queue):
    env = env_for("rabbitmq")
    first, second = f"{unique_queue}-a", f"{unique_queue}-b"
    start_worker(env, "-P", "solo", "-Q", first, "-n", f"first-{unique_queue}@%h")
    start_worker(env, "-P", "solo", "-Q", second, "-n", f"second-{unique_queue}@%h")
    app = client_app(env)
    try:
        for queue, name in ((first, "first"), (second, "second")):
            answers = {app.send_task("gwtest.whoami", queue=queue).get(timeout=60)["hostname"] for _ in range(4)}
            assert {a.split("-")[0] for a in answers} == {name}
    finally:
        purge_queue(app, first)
        purge_queue(app, second)


def test_plugin_packaged_with_setuptools_is_found_and_runs(env_for, start_worker, client_app):
    env = env_for("embedded")
    worker = start_worker(env, "-P", "solo")
    assert "  . gwsetuptools.tasks.shout" in worker.log
    app = client_app(env)
    assert app.send_task("gwsetuptools.tasks.shout", args=["hello"]).get(timeout=30) == "HELLO!"


def test_pickle_message_is_rejected_and_the_worker_keeps_serving(
    broker, env_for, start_worker, client_app, unique_queue
):
    env = env_for(broker)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue)
    app = client_app(env)
    try:
        bad = app.send_task(
            "gwtest.add",
            args=[1, 2],
            queue=unique_queue,
            serializer="pickle",
            headers={"girder_client_token": "very-secret-token"},
        )
        line = worker.wait_for_log(rf"rejected task gwtest\.add\[{bad.id}\].*\n").group(0)
        assert "'application/x-python-serialize' is not accepted, only JSON is" in line
        assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=30) == 5
    finally:
        purge_queue(app, unique_queue)
    assert "very-secret-token" not in worker.log

"""Job callback URLs that someone else controls, against real workers at ``-l debug``.

The hostile callback URLs are HostileServer (tests/hostile_http.py), a FAKE on 127.0.0.1
that redirects to another port, never answers or answers without end: the real Girder
cannot be made to. The healthy job next to them is on the real Girder.
"""

from __future__ import annotations

import pytest

from ..hostile_http import HostileServer, hostile_fixture  # noqa: F401  (the hostile fixture)
from .girder_jobs import (
    ERROR,
    SUCCESS,
    girder_queue_fixture,  # noqa: F401  (the girder_queue fixture)
    log_of,
    on_queue,
    schedule,
)

JOB_TOKEN = "jobTokenOfAHostileSpec0123456789"
CLIENT_TOKEN = "clientTokenOfAHostileSpec0123456"
QUERY_TOKEN = "queryStringToken0123456789abcdef"


def send(app, queue: str, spec: dict, task: str = "gwtest.add", args=(1, 2)):
    headers = {"jobInfoSpec": spec, "girder_client_token": CLIENT_TOKEN}
    return app.send_task(task, args=list(args), queue=queue, headers=headers)


def assert_no_token(text: str) -> None:
    for token in (JOB_TOKEN, CLIENT_TOKEN, QUERY_TOKEN):
        assert token not in text


@pytest.mark.parametrize("broker", ["embedded", "rabbitmq", "redis"])
def test_the_token_never_follows_a_redirect_and_is_never_logged(
    broker, hostile, env_for, start_worker, queue_app, unique_queue
):
    env = env_for(broker)
    elsewhere = hostile("record")
    redirecting = hostile("redirect", target=elsewhere.url)
    worker = start_worker(env, "-l", "debug", *on_queue(unique_queue, "prefork", 1))

    result = send(queue_app(env), unique_queue, redirecting.spec(token=JOB_TOKEN))

    assert result.get(timeout=30) == 3  # reporting never changes a task's outcome
    line = worker.wait_for_log(r"Girder job \w+: its callback URL \S+ answered HTTP 307, a redirect to (\S+);")
    assert line[1] == elsewhere.url
    assert redirecting.tokens() == [JOB_TOKEN]
    assert elsewhere.requests == []  # the token, or anything, went nowhere else
    log = worker.log
    assert "TaskPool: Apply" in log  # the debug line that printed every header
    assert_no_token(log)


def test_with_an_api_url_set_no_report_leaves_its_origin(
    girder, hostile, env_for, start_worker, queue_app, unique_queue
):
    env = env_for("rabbitmq")
    elsewhere = hostile("record")
    worker = start_worker({**env, "GIRDER_WORKER_API_URL": girder.api_url}, "-l", "debug",
                          *on_queue(unique_queue, "threads", 2))  # fmt: skip
    app = queue_app(env)
    # Girder's shape (<API root>/job/<id>): the worker puts it on its own Girder's origin.
    girder_shaped = send(app, unique_queue, elsewhere.spec("0123456789abcdef01234568", JOB_TOKEN))
    # Any other URL: refused.
    other = {**elsewhere.spec("0123456789abcdef01234567", JOB_TOKEN), "url": f"{elsewhere.url}/hook?x=1"}
    refused = send(app, unique_queue, other)

    assert girder_shaped.get(timeout=30) == 3
    assert refused.get(timeout=30) == 3  # the task runs without reporting
    worker.wait_for_log(
        r"girder-worker: not reporting to Girder job 0123456789abcdef01234567: its callback URL is on "
        rf"http://127.0.0.1:{elsewhere.port}, not on GIRDER_WORKER_API_URL's origin http://127.0.0.1:\d+; set "
        r"Girder's worker.api_url to .*; task gwtest.add\[[\w-]+\] runs without reporting to it"
    )
    worker.wait_for_log(r"Girder refuses reports for job 0123456789abcdef01234568 \(HTTP 401")  # the real Girder
    assert worker.log.count("not reporting to Girder job") == 1
    assert elsewhere.requests == []
    assert_no_token(worker.log)


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_a_dead_callback_url_does_not_delay_a_healthy_jobs_reports(
    pool, girder, girder_queue, hostile, env_for, start_worker, queue_app
):
    env = env_for("rabbitmq")
    hanging = hostile("hang")
    huge = hostile("huge")
    start_worker(env, *on_queue(girder_queue, pool, 2))
    app = queue_app(env)
    stuck = send(app, girder_queue, hanging.spec(token=JOB_TOKEN))
    flooding = send(app, girder_queue, huge.spec("0123456789abcdef0123456f", JOB_TOKEN))
    assert stuck.get(timeout=30) == 3
    assert flooding.get(timeout=30) == 3

    job = schedule(girder, girder_queue, "gwtest.report", [3])

    # Within this wait, far shorter than the 60 s the hung request may take to time out.
    done = girder.wait_for_status(job["_id"], SUCCESS, timeout=20)
    assert "line 0\nline 1\nline 2\n" in log_of(done)
    assert hanging.in_flight >= 1  # never answered, still held open, while Girder got everything
    assert huge.sent < 100 * 1024 * 1024  # 400 MB offered; the worker stopped reading


def test_a_token_in_a_query_string_is_in_no_log(girder, girder_queue, env_for, start_worker):
    worker = start_worker(env_for("rabbitmq"), "-l", "debug", *on_queue(girder_queue, "prefork", 1))
    url = f"http://127.0.0.1:9/api/v1/file/1/download?token={QUERY_TOKEN}"

    job = schedule(girder, girder_queue, "gwtest.fail", [f"404 Client Error: Not Found for url: {url}"])

    failed = girder.wait_for_status(job["_id"], ERROR)
    log = log_of(failed)
    assert "404 Client Error: Not Found for url: http://127.0.0.1:9/api/v1/file/1/download?token=***\n" in log
    assert QUERY_TOKEN not in log
    worker.wait_for_log(r"raised unexpected: ValueError\('404 Client Error: Not Found for url: \S+token=\*\*\*")
    assert_no_token(worker.log)
    assert failed["jobInfoSpec"]["headers"]["Girder-Token"] not in worker.log

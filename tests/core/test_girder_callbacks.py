"""A job's callback URL is hostile input: what the worker accepts, and what it does with
a server that redirects, never answers, or answers without end (HostileServer, a fake)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from girder_worker.girder._reporter import Reporter
from girder_worker.girder._rest import MAX_BODY, Http, JobSpec, ReportSettings, SpecRefused, UnsafeCall
from girder_worker_utils import JobStatus

from ..hostile_http import HostileServer, hostile_fixture  # noqa: F401  (the hostile fixture)
from .fake_girder import TOKEN, FakeGirder

GIRDER_SPEC = {"method": "PUT", "url": "http://girder:8080/api/v1/job/j1", "reference": "j1",
               "headers": {"Girder-Token": TOKEN}, "logPrint": True}  # fmt: skip


def test_girders_own_spec_is_accepted_with_only_its_token():
    spec = JobSpec.parse(GIRDER_SPEC, pinned="http://girder:8080/api/v1")

    assert spec is not None
    assert (spec.method, spec.job_id, dict(spec.headers)) == ("PUT", "j1", {"Girder-Token": TOKEN})
    assert TOKEN not in repr(spec)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"url": "file:///etc/passwd"}, "scheme is 'file', not http or https"),
        ({"url": "gopher://girder/x"}, "scheme is 'gopher'"),
        ({"url": "http://user:pw@girder/api/v1/job/j1"}, "carries credentials"),
        ({"url": "http://girder/api/v1/job/j1\nHost: evil"}, "control characters"),
        ({"method": "DELETE"}, "its method is 'DELETE'; Girder's job contract updates a job with PUT"),
        ({"method": "POST"}, "its method is 'POST'"),
        ({"headers": {"Girder-Token": "a\r\nX-Injected: 1"}}, "its Girder-Token is not a printable token"),
        ({"url": None}, "its jobInfoSpec has no url"),
    ],
)
def test_a_spec_girder_would_not_send_is_refused_in_one_line(change, said):
    with pytest.raises(SpecRefused) as refused:
        JobSpec.parse({**GIRDER_SPEC, **change})

    line = str(refused.value)
    assert line.startswith("girder-worker: not reporting to Girder job j1: ")
    assert said in line
    assert "\n" not in line


def test_headers_other_than_the_token_are_not_sent():
    spec = JobSpec.parse({**GIRDER_SPEC, "headers": {"Girder-Token": TOKEN, "Cookie": "x", "Host": "evil"}})

    assert dict(spec.headers) == {"Girder-Token": TOKEN}
    assert spec.dropped_headers == ("Cookie", "Host")


def test_with_an_api_url_set_every_job_url_is_pinned_to_its_origin():
    assert JobSpec.parse(GIRDER_SPEC, pinned="http://GIRDER:8080/other/root") is not None
    with pytest.raises(SpecRefused, match=r"job j1: its callback URL is on http://evil:8080, not on "
                                          r"GIRDER_WORKER_API_URL's origin http://girder:8080; set Girder's "
                                          r"worker.api_url"):  # fmt: skip
        JobSpec.parse({**GIRDER_SPEC, "url": "http://evil:8080/api/v1/job/j1"}, pinned="http://girder:8080/api/v1")
    with pytest.raises(SpecRefused, match="origin http://girder:8080"):
        JobSpec.parse({**GIRDER_SPEC, "url": "https://girder:8080/api/v1/job/j1"}, pinned="http://girder:8080/")


def test_only_the_contracts_methods_and_schemes_are_ever_called():
    http = Http()
    with pytest.raises(UnsafeCall, match="method 'DELETE'"):
        http.call("DELETE", "http://127.0.0.1:9/job/1", {}, None, (1, 1))
    with pytest.raises(UnsafeCall, match="only http and https"):
        http.call("GET", "file:///etc/passwd", {}, None, (1, 1))
    with pytest.raises(UnsafeCall, match="without a timeout"):
        http.call("GET", "http://127.0.0.1:9/job/1", {}, None, None)


def test_the_token_does_not_follow_a_redirect_to_another_origin(hostile, caplog):
    elsewhere = hostile("record")
    redirecting = hostile("redirect", target=elsewhere.url)
    reporter = Reporter()
    channel = reporter.open(JobSpec.parse(redirecting.spec(token=TOKEN)), ReportSettings(interval=0.05))

    reporter.start(channel)
    channel.write("a line\n")
    channel.finish(JobStatus.SUCCESS)

    assert channel.done
    assert redirecting.tokens() == [TOKEN]  # the one request it was meant for
    assert elsewhere.requests == []  # nothing, token or not, went to the other origin
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"answered HTTP 307, a redirect to {elsewhere.url}; the worker follows no redirect" in line
    assert "set Girder's worker.api_url (or GIRDER_WORKER_API_URL) to the URL the redirect leads to" in line


def test_a_huge_answer_is_not_read_whole(hostile):
    huge = hostile("huge")

    code, body = Http().call("PUT", huge.url + "/api/v1/job/1", {"Girder-Token": TOKEN}, {"status": "2"}, (5, 30))

    assert (code, body) == (200, None)
    assert huge.sent < 10 * MAX_BODY  # it stopped writing: the worker stopped reading (400 MB offered)


def test_an_answer_nested_too_deep_to_decode_is_no_answer(hostile):
    deep = hostile("deep")

    code, body = Http().call("PUT", deep.url + "/api/v1/job/1", {"Girder-Token": TOKEN}, {"status": "2"}, (5, 30))

    assert (code, body) == (200, None)


def test_a_callback_url_that_never_answers_delays_no_other_jobs_reports(hostile):
    hanging = hostile("hang")
    girder = FakeGirder()
    try:
        reporter = Reporter()
        settings = ReportSettings(interval=0.05, read_timeout=120)
        stuck = reporter.open(JobSpec.parse(hanging.spec(token=TOKEN)), settings)
        stuck.write("never delivered\n")
        stuck.flush()  # its sender now waits on an answer that does not come
        while not hanging.requests:
            time.sleep(0.01)

        healthy = reporter.open(JobSpec.parse(girder.spec), settings)
        reporter.start(healthy)
        healthy.write("delivered\n")
        healthy.finish(JobStatus.SUCCESS)
        delivered = threading.Event()
        threading.Thread(target=lambda: (_wait_done(healthy), delivered.set()), daemon=True).start()

        assert delivered.wait(30)
        assert girder.status == JobStatus.SUCCESS
        assert girder.log_text() == "delivered\n"
        assert not stuck.done  # the hung request is still open: the healthy job did not wait for it
    finally:
        girder.stop()


def _wait_done(channel) -> None:
    while not channel.done:
        time.sleep(0.01)

"""The worker's side of Girder jobs: Celery signal handlers around each run.

A run whose message carries a ``jobInfoSpec`` header reports to that job:

* ``task_prerun``: RUNNING (the one report a task waits for, briefly: a job that
  Girder already cancelled must not run, and then the run ends REVOKED without
  starting), then the task's output is captured for the job's log;
* ``task_success``: SUCCESS; ``task_failure``: the traceback, then ERROR (or
  CANCELED if the run had been cancelled); ``task_revoked``: CANCELED, whether the
  run stopped, was terminated, or never started;
* ``task_postrun``: what is left of the log.

What the final status is, and the line the log ends with, is decided by
:mod:`girder_worker._outcome`; :func:`end_job` is the one place that writes a
job's final status (also for messages whose run never reports: unknown, refused,
lost with its worker). Each final status follows the whole log. Every handler is
registered with a ``dispatch_uid``, and none of them raises into Celery or the task.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from celery import signals

from girder_worker_utils import CancelFlag
from girder_worker_utils.worker import CANCEL_ATTR, GIRDER_CLIENT_ATTR, JOB_MANAGER_ATTR

from .._outcome import Outcome, line_of, of_failure, of_revoked, of_success, of_unknown_task
from ..cancellation import _cancel as _cancel  # its task_prerun receiver, which attaches the cancel flag, runs first
from ..delivery._gate import dropped
from ..monitoring._log_filter import remember_secret, safe_text
from . import _job_log
from ._job import JobChannel
from ._reporter import current_reporter, reporter
from ._rest import JobSpec, ReportSettings, SpecRefused, load_client, rewrite_api_url

__all__: list[str] = []

logger = logging.getLogger("girder_worker.girder")

#: Seconds a stopping worker (or pool process) waits for its reports to go out.
DRAIN_SECONDS = 10.0
_REMEMBERED = 10_000

# Main process: jobs of the tasks it handed out, for failures only it sees (a pool
# process lost, a hard time limit), whose task_failure carries no request.
_received: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_received_lock = threading.Lock()


class _ClientHolder:
    """Makes the run's ``girder_client.GirderClient`` on first use."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url
        self.token = token
        self._client: Any = None

    def get(self) -> Any:
        if self._client is None:
            from girder_client import GirderClient  # type: ignore[import-untyped]

            client = GirderClient(apiUrl=self.api_url)
            client.setToken(self.token)
            self._client = client
        return self._client


def _is_ours(task: Any) -> bool:
    return task is not None and not str(getattr(task, "name", "") or "").startswith("celery.")


def apply_api_url(request: Any, api_url: str | None) -> str | None:
    """Point the request's Girder URLs at ``api_url`` (``GIRDER_WORKER_API_URL``)."""
    original = getattr(request, "girder_api_url", None) or getattr(request, "apiUrl", None)
    if not api_url:
        return original if isinstance(original, str) else None
    spec = getattr(request, "jobInfoSpec", None)
    if isinstance(spec, dict) and isinstance(spec.get("url"), str):
        url = spec["url"]
        if not original:  # Girder's callback URL is <API root>/job/<id>
            suffix = f"/job/{spec.get('reference')}"
            original = url[: -len(suffix)] if url.endswith(suffix) else None
        request.jobInfoSpec = {**spec, "url": rewrite_api_url(url, original, api_url)}
    request.girder_api_url = api_url
    if getattr(request, "apiUrl", None):
        request.apiUrl = api_url
    return api_url


def _channel_of(task: Any) -> JobChannel | None:
    request = getattr(task, "request", None)
    channel = getattr(request, "__dict__", {}).get(JOB_MANAGER_ATTR)
    return channel if isinstance(channel, JobChannel) else None


def _spec_of(request: Any, settings: ReportSettings) -> JobSpec | None:
    """The request's job spec if it is one to report to; a refused one is one line in the log.

    The task runs either way: reporting never changes a task's outcome.
    """
    try:
        spec = JobSpec.parse(getattr(request, "jobInfoSpec", None), pinned=settings.api_url)
    except SpecRefused as exc:
        logger.warning("%s; task %s[%s] runs without reporting to it", exc,
                       safe_text(getattr(request, "task", None) or getattr(request, "task_name", None) or "?"),
                       safe_text(getattr(request, "id", None) or "?"))  # fmt: skip
        return None
    if spec is not None and spec.dropped_headers:
        logger.warning("girder-worker: Girder job %s: its jobInfoSpec headers %s are not sent (only its "
                       "Girder-Token is)", spec.job_id, ", ".join(spec.dropped_headers))  # fmt: skip
    return spec


def _channel_secrets(channel: JobChannel, request: Any) -> None:
    token = getattr(request, "girder_client_token", None)
    for secret in (channel.spec.token, token):
        remember_secret(secret)
    if isinstance(token, str) and token:
        channel.secrets = (*channel.secrets, token)


def _open(request: Any, app: Any) -> JobChannel | None:
    """A channel for a run that started elsewhere (or never started)."""
    load_client()  # in this thread, before the sender thread needs it (see load_client)
    settings = ReportSettings.for_app(app)
    apply_api_url(request, settings.api_url)
    spec = _spec_of(request, settings)
    if spec is None:
        return None
    channel = reporter().open(spec, settings)
    _channel_secrets(channel, request)
    return channel


def _cancel_run(request: Any) -> None:
    flag = request.__dict__.get(CANCEL_ATTR)
    if flag is None:
        flag = request.__dict__[CANCEL_ATTR] = CancelFlag()
    flag.set("cancelled in Girder")


def end_job(channel: JobChannel, outcome: Outcome) -> None:
    """End the run's Girder job as ``outcome`` says: the rest of the captured output, the
    outcome's log line, then its final status. The only writer of a job's final status."""
    _job_log.end(channel.write_output)
    channel.on_cancel = None
    if outcome.log:
        channel.write(outcome.log)
    channel.finish(outcome.job_status)


@signals.task_received.connect(dispatch_uid="girder_worker.girder.received")
def _on_received(request: Any = None, **kwargs: Any) -> None:
    request_dict = getattr(request, "request_dict", None) or {}
    remember_secret(request_dict.get("girder_client_token"))
    spec = request_dict.get("jobInfoSpec")
    if spec is None:
        return
    headers = spec.get("headers") if isinstance(spec, dict) else None
    for value in headers.values() if isinstance(headers, dict) else ():
        remember_secret(value)
    with _received_lock:
        _received[request.id] = (request.request_dict, request.task)
        while len(_received) > _REMEMBERED:
            _received.popitem(last=False)


@signals.task_prerun.connect(dispatch_uid="girder_worker.girder.prerun")
def _on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if not _is_ours(task):
        return
    request = task.request
    if dropped(request):  # a duplicate delivery: the run it duplicates reports
        return
    settings = ReportSettings.for_app(task.app)
    api_url = apply_api_url(request, settings.api_url)
    token = getattr(request, "girder_client_token", None)
    remember_secret(token)
    if api_url and token:
        if str(api_url).lower().startswith(("http://", "https://")):
            request.__dict__[GIRDER_CLIENT_ATTR] = _ClientHolder(api_url, str(token))
        else:
            logger.warning("girder-worker: task %s[%s] gets no Girder client: its girder_api_url %s is not "
                           "http(s); set GIRDER_WORKER_API_URL", safe_text(task.name), safe_text(task_id),
                           safe_text(api_url, 100))  # fmt: skip
    spec = _spec_of(request, settings)
    if spec is None:
        return
    the_reporter = reporter()
    channel = the_reporter.open(spec, settings)
    _channel_secrets(channel, request)
    request.__dict__[JOB_MANAGER_ATTR] = channel
    channel.on_cancel = lambda: _cancel_run(request)
    if spec.log_print:
        _job_log.begin(channel.write_output)
    the_reporter.start(channel)  # a job already cancelled in Girder cancels the run here


@signals.task_success.connect(dispatch_uid="girder_worker.girder.success")
def _on_success(sender: Any = None, **kwargs: Any) -> None:
    channel = _channel_of(sender)
    if channel is not None:
        end_job(channel, of_success())


@signals.task_failure.connect(dispatch_uid="girder_worker.girder.failure")
def _on_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, einfo: Any = None, **kwargs: Any
) -> None:
    if not _is_ours(sender):
        return
    channel = _channel_of(sender)
    cancelled = channel is not None and bool(getattr(sender, "cancelled", False))
    with _received_lock:
        remembered = _received.pop(task_id or "", None)
    if channel is None and remembered is not None:  # the pool process is gone: report from here
        request_dict, task = remembered
        channel = _open(SimpleNamespace(**request_dict), getattr(task, "app", None))
    if channel is None:
        return
    end_job(channel, of_failure(exception, getattr(einfo, "traceback", None), cancelled=cancelled))


@signals.task_revoked.connect(dispatch_uid="girder_worker.girder.revoked")
def _on_revoked(
    sender: Any = None, request: Any = None, terminated: bool = False, expired: bool = False, **kwargs: Any
) -> None:
    if request is None or not _is_ours(sender):
        return
    channel = getattr(request, "__dict__", {}).get(JOB_MANAGER_ATTR)
    if not isinstance(channel, JobChannel):
        channel = _open(request, getattr(sender, "app", None))
        if channel is None:
            return
    with _received_lock:
        _received.pop(getattr(request, "id", None) or "", None)
    end_job(channel, of_revoked(terminated=terminated, expired=expired))


@signals.task_unknown.connect(dispatch_uid="girder_worker.girder.unknown")
def _on_unknown(sender: Any = None, message: Any = None, name: str | None = None, **kwargs: Any) -> None:
    # The message is discarded; without this its job would wait in QUEUED for ever.
    hostname = getattr(sender, "hostname", None) or "this worker"
    end_job_of(
        getattr(message, "headers", None) or {},
        getattr(sender, "app", None),
        of_unknown_task(safe_text(hostname), safe_text(name)),
    )


def _channel_for(headers: Mapping[str, Any], app: Any) -> JobChannel | None:
    if "jobInfoSpec" not in headers:
        return None
    return _open(SimpleNamespace(**headers), app)


def end_job_of(headers: Mapping[str, Any], app: Any, outcome: Outcome) -> JobChannel | None:
    """End the Girder job that message ``headers`` name, if any, as ``outcome`` says.

    For a message whose run will not report (unknown, refused, lost with its worker).
    """
    channel = _channel_for(headers, app)
    if channel is not None:
        end_job(channel, outcome)
    return channel


def note_on_job(headers: Mapping[str, Any], app: Any, line: str) -> None:
    """Write ``line`` to the log of the Girder job that message ``headers`` name, if any; its
    status stays as it is (a task delivered again after its worker was lost)."""
    channel = _channel_for(headers, app)
    if channel is not None:
        channel.write(line_of(line))
        channel.close()


@signals.task_retry.connect(dispatch_uid="girder_worker.girder.retry")
def _on_retry(request: Any = None, reason: Any = None, **kwargs: Any) -> None:
    channel = getattr(request, "__dict__", {}).get(JOB_MANAGER_ATTR)
    if isinstance(channel, JobChannel):
        channel.write(f"girder-worker: the task will be retried: {reason}\n")


@signals.task_postrun.connect(dispatch_uid="girder_worker.girder.postrun")
def _on_postrun(task: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    if request is None:
        return
    with _received_lock:
        _received.pop(task_id or "", None)
    request.__dict__.pop(GIRDER_CLIENT_ATTR, None)
    channel = request.__dict__.pop(JOB_MANAGER_ATTR, None)
    if isinstance(channel, JobChannel):
        _job_log.end(channel.write_output)
        channel.on_cancel = None
        if channel.final is None:
            channel.close()


@signals.worker_process_shutdown.connect(dispatch_uid="girder_worker.girder.process_shutdown")
@signals.worker_shutdown.connect(dispatch_uid="girder_worker.girder.shutdown")
def _drain(**kwargs: Any) -> None:
    the_reporter = current_reporter()
    if the_reporter is not None and the_reporter.pending():
        the_reporter.drain(DRAIN_SECONDS)

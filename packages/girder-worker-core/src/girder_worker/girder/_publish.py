"""The publishing side of Girder jobs: a Girder job for each task sent with a Girder.

When a task is published with a Girder API URL and a token that may create jobs
(``girder_api_url`` and ``girder_client_token``, given to ``delay``/``apply_async``
or inherited from the running task that publishes it), the ``before_task_publish``
handler here creates its Girder job with ``POST /job`` and puts the job's
``jobInfoSpec`` in the message's headers, so the worker that runs it reports to
it. A child task published by a task that runs a job inherits its parent's URL and
token, and its job names the parent's Celery task id.

Publishing never fails because of Girder: if the job cannot be created, the task
is sent without one and the publisher's log says why, once per publish.

Inside a Girder server, while it answers a REST request (a Girder plugin calls
``delay``), the job is made by Girder's own Job model instead, for the request's
user, and the message gets the worker API URL and a token of that user (see
:func:`girder_worker.context.girder_context.publish_in_request`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import signals
from kombu.utils.json import dumps

from girder_worker_utils.wire import flatten
from girder_worker_utils.worker import GIRDER_HEADERS, GIRDER_OPTIONS, model_repr, walk

from .._celery_internals import current_task
from ..context import girder_context, in_girder_request
from ._reporter import reporter
from ._rest import GirderUnavailable

__all__: list[str] = []

logger = logging.getLogger("girder_worker.girder")

#: Seconds to wait for Girder to create a job (connect, answer).
CREATE_TIMEOUT = (5.0, 30.0)


def _parent_request() -> Any:
    """The request of the task running in this thread, if it runs as a task."""
    task = current_task()
    request = getattr(task, "request", None) if task is not None else None
    return request if getattr(request, "id", None) else None


def _defaults(task_name: str) -> dict[str, Any]:
    return {
        "girder_job_title": task_name,
        "girder_job_type": "celery",
        "girder_job_public": False,
        "girder_job_handler": "celery_handler",
        "girder_job_other_fields": {},
    }


def job_fields(
    task_name: str, body: Any, headers: Mapping[str, Any], options: Mapping[str, Any], parent_id: str | None
) -> dict[str, Any]:
    """The fields of the Girder job of one published task, as Python values.

    ``title``, ``type``, ``handler`` and ``public`` come from the ``girder_job_*``
    options (a task's ``@girder_job`` defaults are options too), else the defaults;
    ``args`` and ``kwargs`` hold transforms as their readable form (the original's
    ``_repr_model_``); ``otherFields`` names the Celery task (and its parent's).
    """
    values = {**_defaults(task_name), **{k: v for k, v in options.items() if v is not None}}
    args, kwargs = (body[0], body[1]) if isinstance(body, (list, tuple)) and len(body) >= 2 else ([], {})
    other_fields = dict(values["girder_job_other_fields"] or {})
    other_fields["celeryTaskId"] = headers["id"]
    if parent_id:
        other_fields["celeryParentTaskId"] = parent_id
    return {
        "title": str(values["girder_job_title"]),
        "type": str(values["girder_job_type"]),
        "handler": str(values["girder_job_handler"]),
        "public": bool(values["girder_job_public"]),
        "args": walk(list(args or []), model_repr),
        "kwargs": walk(dict(kwargs or {}), model_repr),
        "otherFields": other_fields,
    }


def job_parameters(
    task_name: str, body: Any, headers: Mapping[str, Any], options: Mapping[str, Any], parent_id: str | None
) -> dict[str, str]:
    """The form fields of ``POST /job`` for one published task (see :func:`job_fields`).

    Arguments go as JSON (the original sent keyword arguments in a form Girder
    could not parse, so jobs of tasks with keyword arguments were never created).
    """
    fields = job_fields(task_name, body, headers, options, parent_id)
    return {
        "title": fields["title"],
        "type": fields["type"],
        "handler": fields["handler"],
        "public": "true" if fields["public"] else "false",
        "args": dumps(fields["args"]),
        "kwargs": dumps(fields["kwargs"]),
        "otherFields": dumps(fields["otherFields"]),
    }


def create_job(api_url: str, token: str, params: Mapping[str, str], task_ref: str) -> dict[str, Any] | None:
    """``POST /job``; the job document, or None (the reason is logged, never the token)."""
    url = f"{api_url.rstrip('/')}/job"
    try:
        code, body = reporter().http().call("POST", url, {"Girder-Token": token}, params, CREATE_TIMEOUT)
    except GirderUnavailable as exc:
        logger.warning("no Girder job for task %s: Girder at %s: %s; the task is sent without one", task_ref,
                       api_url, exc)  # fmt: skip
        return None
    if code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else body
        logger.warning("no Girder job for task %s: POST %s answered %s (%s); the task is sent without one",
                       task_ref, url, code, message)  # fmt: skip
        return None
    if not isinstance(body.get("jobInfoSpec"), dict):
        logger.warning("no Girder job for task %s: the job Girder made has no jobInfoSpec (is its worker plugin "
                       "enabled?); the task is sent without one", task_ref)  # fmt: skip
        return None
    return body


#: The Girder jobs this process created as it published, by task id, for
#: ``AsyncResult(...).job``; the oldest are forgotten past this many.
_MAX_REMEMBERED = 1000
_jobs: dict[str, dict[str, Any]] = {}


def remember_job(task_id: str, job: dict[str, Any]) -> None:
    """Keep the Girder ``job`` created for ``task_id``."""
    _jobs[task_id] = job
    while len(_jobs) > _MAX_REMEMBERED:
        del _jobs[next(iter(_jobs))]


def job_of(task_id: str) -> dict[str, Any] | None:
    """The Girder job this process created when it published ``task_id``, if any."""
    return _jobs.get(task_id)


@signals.before_task_publish.connect(dispatch_uid="girder_worker.girder.publish")
def _on_publish(
    sender: Any = None, body: Any = None, headers: Any = None, properties: Any = None, **kwargs: Any
) -> None:
    if not isinstance(headers, dict) or not isinstance(sender, str) or sender.startswith("celery."):
        return
    properties = properties if isinstance(properties, dict) else {}
    # Task.apply_async put them in the headers; send_task(..., girder_job_title=...) in the properties.
    options = {key: source.pop(key) for source in (properties, headers) for key in GIRDER_OPTIONS if key in source}
    for key in GIRDER_HEADERS:
        if key in properties:
            headers[key] = properties.pop(key)
    parent = _parent_request()
    if parent is not None:
        for key in ("girder_api_url", "girder_client_token"):
            inherited = getattr(parent, key, None)
            if inherited and not headers.get(key):
                headers[key] = inherited
    try:
        if in_girder_request():
            # Girder's own Job model, the request's user, a token of that user.
            girder_context.publish_in_request(sender, body, headers, options, parent)
        elif not (options.get("girder_job_disable") or headers.get("jobInfoSpec")):
            _create_job(sender, body, headers, options, parent)
    finally:
        _flatten_hooks(headers)


def _flatten_hooks(headers: dict[str, Any]) -> None:
    """Result hooks travel in the headers in the original's format, each on its own."""
    hooks = headers.get("girder_result_hooks")
    if isinstance(hooks, list | tuple):
        headers["girder_result_hooks"] = [h if isinstance(h, dict) else flatten(h) for h in hooks]


def _create_job(sender: str, body: Any, headers: dict[str, Any], options: dict[str, Any], parent: Any) -> None:
    api_url, token = headers.get("girder_api_url"), headers.get("girder_client_token")
    if not api_url or not token or "id" not in headers:
        return
    parent_id = parent.id if parent is not None else None
    try:
        params = job_parameters(sender, body, headers, options, parent_id)
    except (TypeError, ValueError) as exc:
        logger.warning("no Girder job for task %s[%s]: %s", sender, headers["id"], exc)
        return
    job = create_job(str(api_url), str(token), params, f"{sender}[{headers['id']}]")
    if job is not None:
        headers["jobInfoSpec"] = job["jobInfoSpec"]
        remember_job(headers["id"], job)
        for hook in headers.get("girder_result_hooks") or ():
            if not isinstance(hook, dict):
                hook.job = job

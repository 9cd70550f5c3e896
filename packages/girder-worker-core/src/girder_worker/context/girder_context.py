"""Publishing inside a Girder server: jobs are created with Girder's Job model.

A Girder plugin that calls ``delay``/``apply_async`` while Girder answers a REST
request (large_image converting an upload, slicer_cli_web running a CLI) gets a
Girder job made by Girder's own ``Job().createJob`` for the request's user (or the
``girder_user`` option), as the original girder-worker did. The message then
carries what the worker needs to report to that job and to read and write Girder
data for the user: ``jobInfoSpec``, ``girder_api_url`` (the ``worker.api_url``
setting, else Girder's own API URL) and ``girder_client_token`` (a new token of
the user with the scope ``jobs.rest.create_job``, so a task can create the jobs of
the tasks it publishes).

Girder is imported only in the functions here, which run only inside a Girder
server (:func:`girder_worker.context.in_girder_request`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["create_job", "get_async_result_job_property", "publish_in_request"]

#: The scope of the user token a published task gets, as the original's.
TOKEN_SCOPE = "jobs.rest.create_job"  # noqa: S105  (a scope name, not a secret)


def create_job(
    task_name: str,
    body: Any,
    headers: Mapping[str, Any],
    options: Mapping[str, Any],
    parent_id: str | None = None,
) -> dict[str, Any]:
    """Create the Girder job of a task being published, with Girder's Job model.

    Its fields are those the REST path sends (see
    :func:`girder_worker.girder._publish.job_fields`): the ``girder_job_*`` options
    or the task's ``@girder_job`` defaults, transforms in ``args``/``kwargs`` as
    their readable form, and ``celeryTaskId``. Its owner is ``options["girder_user"]``
    or the user of the current request (none for an anonymous request). A
    ``parent_id`` (the Celery id of the task that publishes this one) is recorded as
    ``celeryParentTaskId`` only when Girder has a job for it, because Girder's worker
    plugin looks that job up as the new one is saved, and fails when there is none.

    Returns the job document as Girder stores it.
    """
    from girder.api.rest import getCurrentUser
    from girder_jobs.models.job import Job

    from ..girder._publish import job_fields

    user = options.get("girder_user") or getCurrentUser()
    if parent_id and Job().findOne({"celeryTaskId": parent_id}, fields=["_id"]) is None:
        parent_id = None
    fields = job_fields(task_name, body, headers, options, parent_id)
    job: dict[str, Any] = Job().createJob(
        title=fields["title"],
        type=fields["type"],
        args=fields["args"],
        kwargs=fields["kwargs"],
        user=user,
        public=fields["public"],
        handler=fields["handler"],
        otherFields=fields["otherFields"],
    )
    return job


def publish_in_request(
    task_name: str, body: Any, headers: dict[str, Any], options: Mapping[str, Any], parent: Any
) -> dict[str, Any] | None:
    """Fill a message's headers for a task published during a Girder request.

    Unless the message already names a job (``jobInfoSpec``) or
    ``girder_job_disable`` is set, the job is created (:func:`create_job`), its
    ``jobInfoSpec`` goes in the headers, each result hook gets it as ``.job`` and
    ``AsyncResult(...).job`` returns it. ``girder_api_url`` and
    ``girder_client_token`` are added when the publisher gave none. Returns the job.

    Errors are not caught: the message is not sent and the request fails with
    Girder's own report, rather than a task running without the job its caller
    is about to use.
    """
    from girder.api.rest import getCurrentUser
    from girder.models.token import Token
    from girder_plugin_worker import utils

    from ..girder._publish import remember_job

    job = None
    if not (options.get("girder_job_disable") or headers.get("jobInfoSpec")) and "id" in headers:
        job = create_job(task_name, body, headers, options, parent.id if parent is not None else None)
        headers["jobInfoSpec"] = utils.jobInfoSpec(job)
        remember_job(headers["id"], job)
        hooks = headers.get("girder_result_hooks") or ()
        if any(not isinstance(hook, dict) for hook in hooks):
            # The hooks travel in the message: they get the job as its REST form (plain JSON).
            job_json = _json_form(job)
            for hook in hooks:
                if not isinstance(hook, dict):
                    hook.job = job_json
    if not headers.get("girder_api_url"):
        headers["girder_api_url"] = utils.getWorkerApiUrl()
    if not headers.get("girder_client_token"):
        user = options.get("girder_user") or getCurrentUser()
        if user is not None:
            headers["girder_client_token"] = str(Token().createToken(user=user, scope=TOKEN_SCOPE)["_id"])
    return job


def _json_form(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` as Girder's REST layer writes it: ids as strings, dates in ISO 8601."""
    from girder.utility import JsonEncoder

    form: dict[str, Any] = json.loads(json.dumps(doc, cls=JsonEncoder))
    return form


def get_async_result_job_property(async_result: Any) -> dict[str, Any] | None:
    """The Girder job whose ``celeryTaskId`` is ``async_result``'s task id.

    Read from Girder's database, so it is current (status, log); the job this
    process remembered when it published the task if the database has none.
    """
    from girder_jobs.models.job import Job

    from ..girder._publish import job_of

    found: dict[str, Any] | None = Job().findOne({"celeryTaskId": async_result.id})
    return found if found is not None else job_of(async_result.id)

"""The built-in tasks ``girder_worker.run``, ``girder_worker.convert`` and
``girder_worker.validators``.

The app imports this module in every worker (``create_app`` names it in Celery's
``imports``), so the tasks are in every worker's banner. A client may import it
too, to call ``run.delay(...)``; importing it runs no plugin or entry point.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import Any

from celery import signals

from girder_worker_utils import task

from .._config import _allowed_hosts, _flag, _local_paths, _number
from . import ENTRY_POINT_GROUP
from ._limits import ALLOW_PYTHON_MODE, DEFAULT_MAX_DATA_BYTES, MAX_DATA_BYTES

__all__ = ["convert", "run", "validators"]

logger = logging.getLogger("girder_worker.analysis")

# Keywords the original's tasks took that this one does not need; accepted quietly.
_LEGACY = frozenset({"jobInfo", "fetch", "status", "write_script", "_tempdir", "_job_manager"})


def allow_python_mode(app: Any) -> bool:
    """The worker's ``GIRDER_WORKER_ALLOW_PYTHON_MODE`` (read from the app's configuration)."""
    config = getattr(app, "girder_worker_config", None)
    if config is not None:
        return bool(config.allow_python_mode)
    return _flag(os.environ, ALLOW_PYTHON_MODE)  # a plain Celery app running these tasks


def analysis_limits(app: Any) -> dict[str, Any]:
    """What the worker lets analyses reach: ``local_paths``, ``http_allowed_hosts``,
    ``max_data_bytes`` (from the app's configuration, else the environment)."""
    config = getattr(app, "girder_worker_config", None)
    if config is None:  # a plain Celery app running these tasks
        env = os.environ
        return {
            "local_paths": _local_paths(env),
            "http_allowed_hosts": _allowed_hosts(env),
            "max_data_bytes": int(_number(env, MAX_DATA_BYTES, DEFAULT_MAX_DATA_BYTES, 1024, "bytes")),
        }
    return {
        "local_paths": config.local_paths,
        "http_allowed_hosts": config.http_allowed_hosts,
        "max_data_bytes": config.max_data_bytes,
    }


def _fields(self: Any, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - _LEGACY - {"cleanup"})
    if unknown:
        logger.warning("%s ignores the keyword argument(s) %s", name, ", ".join(unknown))
    request = self.request
    return {
        "job_manager": getattr(self, "job_manager", None),
        "check_cancelled": self.check_cancelled,
        "girder_api_url": getattr(request, "girder_api_url", None) or getattr(request, "apiUrl", None),
        "girder_token": getattr(request, "girder_client_token", None),
        "cleanup": bool(kwargs.get("cleanup", True)),
        **analysis_limits(self.app),
    }


@task(name="girder_worker.run", bind=True)
def run(
    self: Any,
    task: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    auto_convert: bool = True,
    validate: bool = True,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Run the analysis ``task`` on ``inputs``; return ``{output id: binding}``.

    See :func:`girder_worker.analysis.run`. ``cleanup=False`` keeps the run's
    temporary directory; the original's ``jobInfo``, ``fetch``, ``status`` and
    ``write_script`` are accepted and not needed.
    """
    from ._engine import run as run_analysis

    return run_analysis(
        task,
        inputs,
        outputs,
        auto_convert=auto_convert,
        validate=validate,
        allow_python_mode=allow_python_mode(self.app),
        **_fields(self, "girder_worker.run", kwargs),
    )


@task(name="girder_worker.convert", bind=True)
def convert(
    self: Any, type: str, input: dict[str, Any], output: dict[str, Any], validate: bool = True, **kwargs: Any
) -> dict[str, Any]:
    """Convert the ``type`` data ``input`` binds to the format of ``output``, and push it there.

    See :func:`girder_worker.analysis.convert`.
    """
    from ._engine import convert as convert_binding

    return convert_binding(type, input, output, validate, **_fields(self, "girder_worker.convert", kwargs))


@task(name="girder_worker.validators")
def validators(type: str | None = None, format: str | None = None) -> list[dict[str, Any]]:
    """The registered formats matching ``type`` and ``format`` (``None`` matches any)."""
    from . import registry

    return registry.validators(type, format)


@signals.worker_init.connect(dispatch_uid="girder_worker.analysis.load")
def _load_extensions(**kwargs: Any) -> None:
    # With extensions installed, the registry is built and they are run at start-up, so a
    # broken one is reported then, and prefork children inherit the result. Without any,
    # the registry is built at the first analysis (12 ms, in the process that runs it).
    if entry_points(group=ENTRY_POINT_GROUP):
        from . import registry

        registry.ensure_loaded()

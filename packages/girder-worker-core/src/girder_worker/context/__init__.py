"""Where a girder-worker client publishes from: inside a Girder server, or not.

The original girder-worker's ``girder_worker.context``. Inside a Girder server (a
Girder plugin publishing a task while it answers a REST request) the job of a
published task is created with Girder's own Job model for the request's user;
elsewhere with Girder's REST API, from a Girder URL and token (see
:mod:`girder_worker.girder._publish`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType

from . import girder_context, nongirder_context

__all__ = [
    "get_context",
    "girder_context",
    "in_girder_request",
    "in_girder_server",
    "nongirder_context",
    "warn_embedded_in_girder",
]

logger = logging.getLogger("girder_worker")
_warned = False


def in_girder_server() -> bool:
    """Whether Girder's server code is imported in this process (nothing is imported to find out)."""
    return "girder" in sys.modules


def in_girder_request() -> bool:
    """Whether this thread is answering a request of a Girder server.

    True only when Girder's web framework (CherryPy) is already imported and its
    current request belongs to an application; nothing is imported to find out.
    """
    cherrypy = sys.modules.get("cherrypy")
    if cherrypy is None or "girder" not in sys.modules:
        return False
    try:
        return cherrypy.request.app is not None
    except AttributeError:
        return False


def get_context() -> ModuleType:
    """:mod:`.girder_context` inside a Girder request, else :mod:`.nongirder_context`."""
    return girder_context if in_girder_request() else nongirder_context


def warn_embedded_in_girder(data_dir: Path | None) -> None:
    """Warn once, loudly, that a Girder server publishes to the embedded broker.

    With no ``GIRDER_WORKER_BROKER``, girder-worker uses the embedded broker in a
    data directory; the original girder-worker used ``amqp://guest:guest@localhost/``.
    Inside a Girder server every task it sends (Girder's worker plugin, large_image,
    slicer_cli_web) goes to that directory, which only a worker on the same host, run
    by the same user with the same ``GIRDER_WORKER_DATA_DIR``, reads. That can be
    right (one machine), so it is not refused, but it is never silent.
    """
    global _warned
    if _warned or data_dir is None or not in_girder_server():
        return
    _warned = True
    logger.warning(
        "GIRDER_WORKER_BROKER is not set in this Girder server: its tasks go to girder-worker's embedded "
        "broker in %s, which only a girder-worker on this host, run by this user with the same "
        "GIRDER_WORKER_DATA_DIR, reads (the original girder-worker used amqp://guest:guest@localhost/). "
        "Set GIRDER_WORKER_BROKER (and GIRDER_WORKER_BACKEND) in the Girder server's environment to "
        "the broker your workers use, e.g. GIRDER_WORKER_BROKER=amqp://guest:guest@rabbitmq:5672//",
        data_dir,
    )

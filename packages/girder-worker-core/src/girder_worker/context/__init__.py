"""Where a girder-worker client publishes from: inside a Girder server, or not.

The original girder-worker's ``girder_worker.context``. Inside a Girder server (a
Girder plugin publishing a task while it answers a REST request) the job of a
published task is created with Girder's own Job model for the request's user;
elsewhere with Girder's REST API, from a Girder URL and token (see
:mod:`girder_worker._girder_publish`).
"""

from __future__ import annotations

import sys
from types import ModuleType

from . import girder_context, nongirder_context

__all__ = ["get_context", "girder_context", "in_girder_request", "nongirder_context"]


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

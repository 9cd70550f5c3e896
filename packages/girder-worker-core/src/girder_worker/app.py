"""``girder_worker.app.app``: the Celery app every girder-worker process uses.

Clients import it to publish tasks; ``girder-worker`` (or ``celery -A
girder_worker.app worker``) runs a worker on it. Importing it reads the
configuration from the environment and never imports plugins: the worker loads
them when it starts, and a broken plugin cannot make this import fail.
"""

from ._app import create_app

__all__ = ["app"]

app = create_app()

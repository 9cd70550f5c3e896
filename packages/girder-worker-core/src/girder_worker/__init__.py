"""girder-worker: the worker that runs Girder's jobs on Celery.

The app is :data:`girder_worker.app.app`; the plugin interface is
:class:`GirderWorkerPluginABC`. Importing this package configures nothing.
"""

from girder_worker_utils import GirderWorkerPluginABC

from .__about__ import __version__
from ._cancel import CancelOutcome, cancel
from ._message_checks import MessageTooLargeError
from ._outages import PublishError

__all__ = ["CancelOutcome", "GirderWorkerPluginABC", "MessageTooLargeError", "PublishError", "__version__", "cancel"]

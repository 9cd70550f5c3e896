"""girder-worker: the worker that runs Girder's jobs on Celery.

The app is :data:`girder_worker.app.app`; the plugin interface is
:class:`GirderWorkerPluginABC`. Importing this package configures nothing.
"""

from girder_worker_utils import GirderWorkerPluginABC

from .__about__ import __version__
from .broker._message_checks import MessageTooLargeError
from .broker._outages import PublishError
from .cancellation._cancel import CancelOutcome, cancel

__all__ = ["CancelOutcome", "GirderWorkerPluginABC", "MessageTooLargeError", "PublishError", "__version__", "cancel"]

"""The girder-worker Celery app: configured from the environment, with plugins."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, signals
from celery.loaders.app import AppLoader
from kombu.utils.objects import cached_property

from . import pipeline
from ._celery_internals import swap_settings_class
from ._config import Config, read_config
from ._plugins import PluginReport, load_plugins
from ._settings import GirderWorkerSettings
from .broker._outages import RABBITMQ_TRANSPORTS, publish_error

__all__ = ["GirderWorkerApp", "create_app"]

logger = logging.getLogger("girder_worker")


class Loader(AppLoader):  # type: ignore[misc]
    """Celery's app loader, which also loads the plugins before the task modules."""

    override_backends = {
        "file": "girder_worker.broker._embedded:FileResultBackend",
        "redis": "girder_worker.broker._redis_results:ResultBackend",
        "rediss": "girder_worker.broker._redis_results:ResultBackend",
    }

    def import_default_modules(self) -> Any:
        self.app.load_plugins()
        return super().import_default_modules()


class GirderWorkerApp(Celery):  # type: ignore[misc]
    """A Celery app that loads girder-worker plugins and reads settings in either case.

    ``app.config`` is ``app.conf``, and both accept Celery's setting names in upper
    case too, so the plugin guide's ``self.app.config.update({'TASK_TIME_LIMIT':
    300})`` sets ``task_time_limit``.
    """

    girder_worker_config: Config
    plugin_reports: list[PluginReport] | None = None

    def __init__(self, *args: Any, girder_worker_config: Config, **kwargs: Any) -> None:
        kwargs.setdefault("loader", Loader)
        kwargs.setdefault("task_cls", "girder_worker_utils:Task")
        kwargs.setdefault("control", "girder_worker.cancellation._cancel:Control")
        kwargs.setdefault("amqp", "girder_worker.broker._message_checks:AMQP")
        kwargs.setdefault("events", "girder_worker.monitoring._task_events:Events")
        super().__init__(*args, **kwargs)
        swap_settings_class(self, GirderWorkerSettings)
        self.girder_worker_config = girder_worker_config
        self.strict_plugins = girder_worker_config.strict_plugins
        self._plugins_lock = threading.Lock()

    @property
    def config(self) -> Any:
        """The app's configuration, the same object as :attr:`conf`."""
        return self.conf

    @cached_property
    def AsyncResult(self) -> Any:  # noqa: N802  (Celery's name)
        """Results with the task's Girder job as ``.job`` (the original's GirderAsyncResult)."""
        return self.subclass_with_self("girder_worker.task:GirderAsyncResult")

    @cached_property
    def Worker(self) -> Any:  # noqa: N802  (Celery's name)
        return self.subclass_with_self("girder_worker._worker:Worker")

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Celery's ``send_task``; an unreachable broker or backend raises one-line :class:`PublishError`."""
        try:
            return super().send_task(name, *args, **kwargs)
        except Exception as exc:
            error = publish_error(self, name, exc)
            if error is None:
                raise
            raise error from None

    def confirm_published(self, timeout: float = 30.0) -> int:
        """Wait until the broker has confirmed every task message this process published.

        On RabbitMQ a publish returns before RabbitMQ's confirm arrives (up to
        ``GIRDER_WORKER_PUBLISH_WINDOW`` messages per connection await theirs); call this
        where your program must know its messages are queued, for example before it
        reports them sent. A message whose connection closed first is published again.
        Other brokers need no confirm. Returns how many messages it waited for.

        Raises:
            girder_worker.PublishError: RabbitMQ refused a message three times, or did not
                confirm every one within ``timeout`` seconds; one line names the tasks.
        """
        if self.conf.broker_transport not in RABBITMQ_TRANSPORTS:
            return 0
        from .broker._rabbitmq import confirm_published

        return confirm_published(timeout)

    def load_plugins(self) -> list[PluginReport]:
        """Load the installed plugins once; return what happened to each."""
        with self._plugins_lock:
            if self.plugin_reports is None:
                self.plugin_reports = load_plugins(
                    self, only=self.girder_worker_config.plugins, strict=self.strict_plugins
                )
            return self.plugin_reports


def create_app(config: Config | None = None) -> GirderWorkerApp:
    """Build a girder-worker app from ``config`` (default: the environment), with every step of
    :data:`girder_worker.pipeline.PIPELINE` installed."""
    config = config or read_config()
    app = GirderWorkerApp("girder_worker", girder_worker_config=config)
    app.conf.update(config.settings)
    # The built-in tasks; set without reading app.conf, which would finalize it.
    app.conf.update(imports=(*config.settings.get("imports", ()), "girder_worker.analysis.tasks"))
    logging.getLogger("girder_worker").setLevel(config.logging_level.upper())
    pipeline.install(app, config)
    from .context import warn_embedded_in_girder

    warn_embedded_in_girder(config.data_dir if config.embedded else None)
    return app


@signals.celeryd_init.connect(dispatch_uid="girder_worker.load_plugins")
def _load_plugins_before_worker(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    # Before the worker reads its settings, so plugin configuration (time limits,
    # routes) applies to it.
    app = getattr(instance, "app", None)
    if isinstance(app, GirderWorkerApp):
        app.load_plugins()

"""The steps one task message goes through in a girder-worker, in order, in one place.

Each :class:`Step` names the Celery extension point it hangs on (a bootstep, a
signal, the app's ``amqp`` or ``events`` class, the task class) and the module that
does its one job. :data:`PIPELINE` lists them in the order a run meets them, and
:func:`install` puts them on an app in that order: :func:`girder_worker._app.create_app`
calls it, so what this module lists is what a worker runs.

Two steps are the task class's own (``girder_worker_utils.Task``): argument
transforms and result hooks run inside the task's ``__call__``, around the task's
body, and need nothing installed. The final state is a set of rules
(:mod:`girder_worker._outcome`) that the other steps consult.

Print the list with ``python -m girder_worker.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import Config

__all__ = ["PIPELINE", "Step", "describe", "install"]

Installer = Callable[[Any, "Config"], None]


@dataclass(frozen=True)
class Step:
    """One step of a task run: what it does, where it hangs, where it lives."""

    name: str
    does: str
    seam: str
    module: str
    install: Installer | None = None


def _log_secrets(app: Any, config: Config) -> None:
    from .monitoring import _log_filter  # noqa: F401  (its logging-setup receivers mask secrets)


def _intake(app: Any, config: Config) -> None:
    from .broker import _compression, _wire_format

    _wire_format.install()
    _compression.install(config.accept_compression, config.max_message_bytes)


def _fair_dispatch(app: Any, config: Config) -> None:
    from .broker._dispatch import FairDispatch

    app.steps["consumer"].add(FairDispatch)


def _admission(app: Any, config: Config) -> None:
    # _admission's task_prerun receiver is connected here, before the girder job's and the
    # metrics' (connected later in this list), which skip a run it dropped as a duplicate.
    from .delivery import _admission  # noqa: F401
    from .delivery._delivery import DeliveryStep

    app.steps["worker"].add(DeliveryStep)
    from .broker._outages import RABBITMQ_TRANSPORTS

    if config.settings.get("broker_transport") in RABBITMQ_TRANSPORTS:
        from .broker._rabbitmq import ConfirmEachPublish

        # What a worker acknowledges next (a retried or re-delivered task's old message)
        # rests on what it published: its publishes wait for RabbitMQ's confirm, each.
        app.steps["worker"].add(ConfirmEachPublish)


def _cancel_flag(app: Any, config: Config) -> None:
    from .cancellation._cancel import CancelStep

    app.steps["worker"].add(CancelStep)


def _time_limits(app: Any, config: Config) -> None:
    from .cancellation._timelimit import TimeLimitStep

    app.steps["worker"].add(TimeLimitStep)


def _girder_job(app: Any, config: Config) -> None:
    # _signals imports cancellation._cancel first, so the cancel flag is attached
    # (task_prerun) before the job is told RUNNING.
    from .girder import _publish, _signals  # noqa: F401  (their signal receivers)


def _monitoring(app: Any, config: Config) -> None:
    from .monitoring import _metrics, _status, _task_log  # noqa: F401  (_metrics stamps messages; _status: `plugins`)

    if config.metrics_port is not None:
        from .monitoring._metrics_step import MetricsStep

        app.steps["worker"].add(MetricsStep)
    _task_log.install(config.log_format, app)


PIPELINE: tuple[Step, ...] = (
    Step(
        "secrets out of logs",
        "masks tokens and passwords in every log line before any handler sees it",
        "signals after_setup_logger / after_setup_task_logger",
        "girder_worker.monitoring._log_filter",
        _log_secrets,
    ),
    Step(
        "intake",
        "bounds the size after decompression, decodes the original's wire format by an allow-list, "
        "checks id, headers and arguments; a refusal is one line, a FAILURE result and an ERROR job",
        "app.amqp class, the worker's Consumer class, kombu serializer registry",
        "girder_worker.broker",
        _intake,
    ),
    Step(
        "fair dispatch",
        "takes a message only when a process is free to run it",
        "consumer bootstep",
        "girder_worker.broker._dispatch",
        _fair_dispatch,
    ),
    Step(
        "admission",
        "claims the task's lease in the process that runs it, with its STARTED state in one write, "
        "applies its delivery policy, drops a duplicate of a task running elsewhere; "
        "releases or keeps the lease when the run ends",
        "worker bootstep, signal task_prerun, the result backend's store_result, "
        "the Request's success/failure callbacks",
        "girder_worker.delivery",
        _admission,
    ),
    Step(
        "cancel flag",
        "raises self.cancelled on a cancel from Girder or a client; stops the run after its grace period",
        "worker bootstep, app.control class, signals task_prerun / task_postrun",
        "girder_worker.cancellation._cancel",
        _cancel_flag,
    ),
    Step(
        "time limits",
        "enforces soft and hard time limits from the main process, in every pool",
        "worker bootstep",
        "girder_worker.cancellation._timelimit",
        _time_limits,
    ),
    Step(
        "argument transforms",
        "turns transform arguments into values, and cleans them up after the run",
        "the task class's __call__",
        "girder_worker_utils",
    ),
    Step(
        "girder job",
        "creates the job when a task is sent; RUNNING, log capture and progress during the run; "
        "the final status after it",
        "signals before_task_publish, task_prerun, task_success / task_failure / task_revoked, task_postrun",
        "girder_worker.girder",
        _girder_job,
    ),
    Step(
        "result hooks",
        "hands the task's return value to its girder_result_hooks (uploads to Girder)",
        "the task class's __call__",
        "girder_worker_utils",
    ),
    Step(
        "final state",
        "decides how the run ended (returned, raised, cancelled, terminated, time limit, expired, lost, refused) "
        "and so what its result, its Girder job (written by girder._signals.end_job alone) and its task event say",
        "signals task_success / task_failure / task_revoked, the Request's failure callback",
        "girder_worker._outcome",
    ),
    Step(
        "monitoring",
        "task events for Flower and celery events, per-task log lines, optional Prometheus metrics",
        "app.events class, logging signals, worker bootstep",
        "girder_worker.monitoring",
        _monitoring,
    ),
)


def install(app: Any, config: Config) -> None:
    """Put every step of :data:`PIPELINE` on ``app``, in order."""
    for step in PIPELINE:
        if step.install is not None:
            step.install(app, config)


def describe() -> str:
    """The pipeline as numbered lines: each step, what it does, its seam and its module."""
    lines = []
    for number, step in enumerate(PIPELINE, 1):
        lines.append(f"{number:2}. {step.name}: {step.does}")
        lines.append(f"    on {step.seam}; in {step.module}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe())

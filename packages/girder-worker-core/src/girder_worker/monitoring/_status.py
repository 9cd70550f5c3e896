"""``girder-worker status``: the workers that answer, their plugins, tasks and queues.

Workers are asked through Celery's remote control (``ping``, ``active``,
``active_queues``, and girder-worker's own ``plugins`` inspect command, registered
here with Celery's documented :func:`celery.worker.control.inspect_command`, so
``girder-worker inspect plugins`` works too). Queue depths come from the broker
itself: a passive ``queue_declare``, which every kombu transport answers with the
number of waiting messages (the embedded broker counts its queue files).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from celery.worker.control import inspect_command
from kombu.exceptions import OperationalError

from ..broker._outages import masked

__all__ = ["plugins", "queue_depths", "status"]


@inspect_command()  # type: ignore[misc]
def plugins(state: Any) -> list[dict[str, Any]]:
    """The girder-worker plugins this worker loaded, and the ones that failed."""
    reports = getattr(state.app, "plugin_reports", None) or []
    return [
        {
            "name": r.name,
            "distribution": r.distribution,
            "version": r.version,
            "tasks": len(r.tasks),
            "error": r.error,
        }
        for r in reports
    ]


def _plugin_text(entries: Any) -> str:
    if not isinstance(entries, list):
        return "(not reported: the worker is no girder-worker)"
    if not entries:
        return "(none)"
    parts = []
    for entry in entries:
        if entry.get("error"):
            parts.append(f"{entry.get('name')} FAILED ({entry['error']})")
        else:
            source = f"{entry.get('distribution')} {entry.get('version')}"
            parts.append(f"{entry.get('name')} ({source}, {entry.get('tasks')} tasks)")
    return ", ".join(parts)


def queue_depths(app: Any, names: Iterable[str]) -> dict[str, int | None]:
    """Messages waiting in each queue, from the broker; ``None`` for a queue RabbitMQ does not have.

    Redis keeps no empty queue, so a queue it does not have counts 0 messages.
    """
    depths: dict[str, int | None] = {}
    with app.connection_for_read() as conn:
        missing = None if conn.transport.driver_type == "amqp" else 0
        for name in sorted(set(names)):
            # A passive declare of a missing queue closes the channel on AMQP: one channel each.
            channel = conn.channel()
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except conn.channel_errors:
                depths[name] = missing
            finally:
                try:
                    channel.close()
                except conn.channel_errors + conn.connection_errors:
                    pass
    return depths


def _one_per_node(replies: Any) -> dict[str, Any]:
    """``{hostname: reply}`` from a broadcast's list of one-item dictionaries."""
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    return merged


def status(app: Any, timeout: float, out: TextIO, err: TextIO, prog: str = "girder-worker") -> int:
    """Print the workers that answer within ``timeout`` seconds, and the queues' depths.

    Returns 0 when at least one worker answered, 1 when none did or the broker
    cannot be reached (one line on ``err``).
    """
    config = app.girder_worker_config
    broker = f"embedded, in {config.data_dir}" if config.embedded else masked(app.conf.broker_url or "")
    conn_errors = (OSError, OperationalError, *app.connection_for_read().connection_errors)
    try:
        pings = app.control.inspect(timeout=timeout).ping() or {}
        if not pings:
            print(
                f"{prog}: no worker answered within {timeout:g} s on the broker ({broker}); start one with "
                f"`{prog}`, or wait longer with --timeout",
                file=err,
            )
            return 1
        nodes = sorted(pings)
        asked = app.control.inspect(timeout=timeout, destination=nodes, limit=len(nodes))
        active = asked.active() or {}
        queues = asked.active_queues() or {}
        loaded = _one_per_node(
            app.control.broadcast("plugins", reply=True, timeout=timeout, destination=nodes, limit=len(nodes))
        )
        consumed: dict[str, int] = {}
        for node in nodes:
            for queue in queues.get(node) or []:
                consumed[queue["name"]] = consumed.get(queue["name"], 0) + 1
        depths = queue_depths(app, consumed or [app.conf.task_default_queue])
    except conn_errors as exc:
        problem = " ".join(str(exc).split())
        print(
            f"{prog}: error: cannot reach the broker ({broker}): {problem}; start it or fix GIRDER_WORKER_BROKER",
            file=err,
        )
        return 1

    print(f"broker: {broker}", file=out)
    print(f"workers: {len(nodes)} answered within {timeout:g} s", file=out)
    for node in nodes:
        running = active.get(node)
        print(f"  {node}", file=out)
        print(f"    plugins: {_plugin_text(loaded.get(node))}", file=out)
        if running is None:
            print("    active:  (no answer)", file=out)
        else:
            print(f"    active:  {len(running)} task(s)", file=out)
            for task in running:
                print(f"      {task.get('name')}[{task.get('id')}]", file=out)
    print("queues:", file=out)
    for name, depth in depths.items():
        waiting = "not on the broker" if depth is None else f"{depth} message(s) waiting"
        print(f"  {name}: {waiting}, consumed by {consumed.get(name, 0)} worker(s)", file=out)
    return 0

"""Every private Celery, kombu, billiard and prometheus_client name core relies on.

This is the only module of ``girder_worker`` that touches them. The rest of core
calls the small functions here, each named for what it does; each says what it
relies on, which releases it was checked on (Celery and kombu 5.4 to 5.7, billiard
4.2, prometheus_client 0.26) and which contract test in
``tests/compat/test_contracts.py`` fails loudly when a release changes it.
``tests/test_quality.py`` fails when a private name shows up anywhere else.

Two of Celery's and kombu's private methods are overridden in a subclass, which has
to stay where the subclass is; each override is one line that calls into this
module:

* ``girder_worker._worker.Worker._process_task`` calls :func:`process_task`;
* ``girder_worker.broker._redis.Channel._brpop_read`` calls :func:`read_redis_item`;
* ``girder_worker.broker._redis_results.ResultBackend._store_result`` (the per-state
  hook Celery's key-value result backends implement) calls :func:`encoded_result_meta`
  and :func:`redis_value_limit`.

The embedded broker (:mod:`girder_worker.broker._embedded`) implements kombu's
virtual-transport API (``_put``, ``_get``, ``_purge``, ...), which is meant for
transports to override; the one part of it that is not, the channel's bindings,
is read through :func:`queue_bindings`.

When a release changes one of these points: run ``hatch run compat:test``. The
failing contract test names the attribute, the releases installed and the function
here that relies on it; change that function (keeping its signature, so that no
other module changes), and its comment's "checked on" line.

(The utils package has its own, smaller adapter: ``girder_worker_utils._celery_internals``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from celery._state import _set_current_app, _task_stack, _tls
from celery.app.defaults import _TO_NEW_KEY
from celery.worker import state as _worker_state
from kombu.utils.encoding import bytes_to_str

__all__ = [
    "active_requests",
    "chains_acknowledgement",
    "current_app_if_set",
    "current_task",
    "encoded_result_meta",
    "event_dispatcher",
    "ignored_task_line",
    "is_active",
    "is_revoked",
    "mark_revoked",
    "new_setting_name",
    "pass_to_run",
    "process_task",
    "queue_bindings",
    "read_redis_item",
    "redis_value_limit",
    "replace_request_callbacks",
    "replace_revoke_command",
    "request_message",
    "request_of_pool_call",
    "request_retries",
    "request_time_limits",
    "reserved_count",
    "reserved_requests",
    "restore_can_consume",
    "run_worker_command",
    "set_current_app",
    "shadow_can_consume",
    "swap_acknowledgement",
    "swap_settings_class",
    "take_worker_time_limits",
    "task_line_fields",
    "task_ready",
    "terminated_on_purpose",
    "use_prometheus_multiprocess_values",
    "worker_lost_detail",
    "wrap_pool_apply_async",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# -- celery.worker.request.Request ------------------------------------------------


def request_message(request: Any) -> Any:
    """The kombu message ``request`` was made from.

    Relies on ``Request._message``, set in ``Request.__init__`` (Celery 5.4-5.7).
    Contract test: ``test_request_message``.
    """
    return request._message


def request_retries(request: Any) -> int:
    """How many times ``request``'s task was retried before this delivery (0 at first).

    Relies on ``Request._request_dict``, the message's headers (protocol 2) or body
    (protocol 1) as a dict, with ``retries`` (Celery 5.4-5.7).
    Contract test: ``test_request_dict_retries``.
    """
    return int(request._request_dict.get("retries") or 0)


def pass_to_run(request: Any, key: str, value: Any) -> None:
    """Give ``request``'s run ``value`` as its ``task.request.<key>``, in the process that runs it.

    Relies on ``Request._request_dict`` being the dict ``Request.execute_using_pool``
    hands to the pool (and the solo pool's call), from which the tracer makes the
    run's ``Context``, one attribute per key (Celery 5.4-5.7).
    Contract test: ``test_a_key_put_in_the_request_dict_reaches_the_run``.
    """
    request._request_dict[key] = value


def terminated_on_purpose(request: Any) -> bool:
    """Whether Celery revoked or cancelled ``request`` itself (so its pool process did not die on its own).

    Relies on ``Request._already_revoked`` and ``Request._already_cancelled``, class
    attributes False until ``Request.revoked`` / ``Request.cancel`` set them (Celery 5.4-5.7).
    Contract test: ``test_request_already_revoked``.
    """
    return bool(request._already_revoked or request._already_cancelled)


def chains_acknowledgement(consumer: Any) -> bool:
    """Whether Celery chains work of its own onto the next acknowledgements of ``consumer``'s requests.

    Right after a reconnection Celery restores its prefetch count step by step, each
    step chained to a request's deferred acknowledgement; a request acknowledged any
    other way would skip it. A worker that holds acknowledgements back
    (:mod:`girder_worker.broker._solo_acks`) leaves those requests to Celery.

    Relies on ``Consumer.restart_count`` and ``Consumer._maximum_prefetch_restored``
    (Celery 5.4-5.7).
    Contract test: ``test_consumer_maximum_prefetch_restored``.
    """
    return consumer is None or (consumer.restart_count > 0 and not consumer._maximum_prefetch_restored)


def swap_acknowledgement(request: Any, on_ack: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Have ``request.acknowledge()`` call ``on_ack(logger, connection_errors)``; return what it called before.

    Fair dispatch on RabbitMQ holds back the acknowledgement of the message that
    filled the worker's last free process, and writes it (with the returned
    function) when a process frees. Relies on ``Request._on_ack``, what
    ``Request.acknowledge`` calls with ``(logger, connection_errors)``, assignable per
    instance (Celery 5.4-5.7).
    Contract test: ``test_request_on_ack_is_assignable``.
    """
    previous: Callable[[Any, Any], None] = request._on_ack
    request._on_ack = on_ack
    return previous


def replace_request_callbacks(request: Any, on_success: Callable[..., Any], on_failure: Callable[..., Any]) -> None:
    """Have the pool call ``on_success`` / ``on_failure`` when ``request``'s run ends.

    The replacements usually wrap what was there (``request.on_success``, read first).
    Relies on ``Request.execute_using_pool`` reading ``self.on_success`` and
    ``self.on_failure`` when it hands the run to the pool, so that attributes of the
    instance shadow the methods (Celery 5.4-5.7).
    Contract test: ``test_request_callbacks_are_replaceable_per_instance``.
    """
    request.on_success = on_success
    request.on_failure = on_failure


def request_of_pool_call(options: dict[str, Any]) -> Any:
    """The request whose run ``pool.apply_async(**options)`` starts, or None (not a task run).

    Relies on ``Request.execute_using_pool`` passing ``timeout_callback=self.on_timeout``,
    a bound method whose ``__self__`` is the request (Celery 5.4-5.7).
    Contract test: ``test_request_hands_its_on_timeout_to_the_pool``.
    """
    return getattr(options.get("timeout_callback"), "__self__", None)


def request_time_limits(request: Any) -> tuple[float | None, float | None]:
    """The (hard, soft) time limits ``request``'s message asked for, each None if none.

    Relies on ``Request.time_limits``, the message's ``timelimit`` header as
    (hard, soft) (Celery 5.4-5.7).
    Contract test: ``test_request_time_limits_are_the_messages_hard_then_soft``.
    """
    hard, soft = getattr(request, "time_limits", None) or (None, None)
    return hard, soft


# -- the worker (WorkController), its pool and its consumer ---------------------------


def process_task(worker: Any, request: Any, celery_process_task: Callable[[Any], None]) -> None:
    """The body of ``Worker._process_task``: hand ``request`` to the pool if ``worker.prepare_run`` agrees.

    ``celery_process_task`` is Celery's own (``super()._process_task``). When
    ``worker.prepare_run(request)`` says no, the run was handled already, and the
    pool slot taken for it is given back, as Celery does for a revoked task.
    Relies on ``WorkController._process_task(self, req)``, called per task by the
    consumer, and on ``WorkController._quick_release``, set by the Pool bootstep when
    the pool uses a semaphore (Celery 5.4-5.7).
    Contract tests: ``test_work_controller_process_task``,
    ``test_pool_step_sets_quick_release_and_reads_the_time_limits``.
    """
    if worker.prepare_run(request):
        celery_process_task(request)
        return
    release = getattr(worker, "_quick_release", None)
    if release is not None:
        release()


def take_worker_time_limits(worker: Any) -> tuple[float | None, float | None]:
    """Take the worker-wide (hard, soft) time limits away from the pool, and return them.

    Called from a worker bootstep's ``__init__``. Relies on the Pool bootstep reading
    ``w.time_limit`` and ``w.soft_time_limit`` in its ``create()``, after every step
    was made (Celery 5.4-5.7).
    Contract test: ``test_pool_step_sets_quick_release_and_reads_the_time_limits``.
    """
    hard, soft = worker.time_limit or None, worker.soft_time_limit or None
    worker.time_limit = worker.soft_time_limit = None
    return hard, soft


def wrap_pool_apply_async(pool: Any, options_for: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Pass the options of every run handed to ``pool`` through ``options_for`` first.

    Called from a worker bootstep's ``create()``, after the pool is made. Relies on
    ``create_request_cls(pool=...)`` binding ``pool.apply_async`` when the consumer
    starts, later, so that the Request classes call the replacement (Celery 5.4-5.7).
    Contract test: ``test_request_class_binds_the_pools_apply_async_when_made``.
    """
    apply_async = pool.apply_async

    def apply_with_options(target: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return apply_async(target, args, kwargs, **options_for(options))

    pool.apply_async = apply_with_options


def event_dispatcher(consumer: Any) -> Any:
    """The consumer's task-event dispatcher, or None (no consumer yet, or not connected yet).

    Relies on ``Consumer.event_dispatcher``, set by the consumer's Events bootstep
    when it starts, and on ``WorkController.consumer`` when a worker's is read
    (Celery 5.4-5.7).
    Contract tests: ``test_consumer_event_dispatcher_and_worker_task_events``,
    ``test_worker_consumer_is_set_by_its_bootstep``.
    """
    return getattr(consumer, "event_dispatcher", None)


def worker_lost_detail(exc: BaseException) -> str:
    """What billiard's ``WorkerLostError`` says about the death of a pool process.

    ``"signal 9 (SIGKILL)"`` out of ``"Worker exited prematurely: signal 9 (SIGKILL) Job: 0."``,
    and "" when it says nothing. Relies on the text billiard's pool gives it
    (billiard 4.2, with Celery 5.4-5.7).
    Contract test: ``test_billiard_worker_lost_text``.
    """
    detail = str(exc).split("Job:")[0].strip().rstrip(".")
    return detail.removeprefix("Worker exited prematurely: ")


# -- celery.worker.state: this worker's requests and revoked ids ---------------------
# Read at each call (never bound at import), as Celery's own modules do.


def is_revoked(task_id: str) -> bool:
    """Whether ``task_id`` is in this worker's revoked ids (its run is skipped, or cancelled).

    Relies on ``celery.worker.state.revoked``, a set-like ``LimitedSet`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return task_id in _worker_state.revoked


def mark_revoked(task_ids: Iterable[str]) -> None:
    """Add ``task_ids`` to this worker's revoked ids: a queued run of them never starts.

    Relies on ``celery.worker.state.revoked.update`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    _worker_state.revoked.update(task_ids)


def active_requests() -> Collection[Any]:
    """The requests running in this worker now (a live collection: copy it to iterate at leisure).

    Relies on ``celery.worker.state.active_requests`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return _worker_state.active_requests  # type: ignore[no-any-return]


def is_active(request: Any) -> bool:
    """Whether ``request`` runs in this worker now.

    Relies on ``celery.worker.state.active_requests`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return request in _worker_state.active_requests


def reserved_requests() -> Collection[Any]:
    """The requests this worker took from the broker and has not finished (running ones included).

    Relies on ``celery.worker.state.reserved_requests`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return _worker_state.reserved_requests  # type: ignore[no-any-return]


def reserved_count() -> int:
    """How many requests this worker holds (polled by fair dispatch; kept to one call).

    Relies on ``celery.worker.state.reserved_requests`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return len(_worker_state.reserved_requests)


def task_ready(request: Any) -> None:
    """Take ``request`` out of this worker's books (reserved, active), as Celery does when a run ends.

    Relies on ``celery.worker.state.task_ready(request)`` (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    _worker_state.task_ready(request)


def replace_revoke_command(help: str) -> Callable[[_F], _F]:
    """A decorator that makes its function the worker's ``revoke`` remote-control command.

    The function is called as Celery's own: ``(state, task_id, terminate=False,
    signal=None, **kwargs)``, ``task_id`` one id or a list. Relies on
    ``celery.worker.control.control_command`` replacing the built-in entry of
    ``Panel.data['revoke']`` (and ``Panel.meta``) when registered under the same name
    (Celery 5.4-5.7).
    Contract test: ``test_builtin_revoke_command_can_be_replaced``.
    """
    from celery.worker import control

    register: Callable[[_F], _F] = control.control_command(
        name="revoke",
        variadic="task_id",  # as Celery's own: `celery control revoke ID ...` passes the ids as task_id
        signature="[id1 [id2 [... [idN]]]]",
        help=help,
    )
    return register


# -- the command line ------------------------------------------------------------------


def run_worker_command(app: Any, args: list[str], prog_name: str) -> bool:
    """Run Celery's ``worker`` command on ``app`` with ``args``; False (nothing run) when it cannot.

    ``celery -A APP worker ARGS`` imports Celery's whole command line first: every
    other command, and through ``celery amqp``'s shell prompt_toolkit (95 ms, a third
    of a worker's start here, and ~4 MB). This runs the ``worker`` command alone,
    with the context the ``celery`` group would give it; like any click command, it
    ends with ``SystemExit`` and the exit status. It runs nothing when the app has
    user options (``app.user_options``), which only that group applies.

    Relies on ``celery.bin.worker.worker`` being a click command that finds its app,
    colour and quiet settings on ``ctx.obj``, a ``celery.bin.base.CLIContext(app,
    no_color, workdir, quiet)``, and on the group's callback doing nothing else for
    ``-A APP worker`` without global options (Celery 5.4-5.7).
    Contract test: ``test_worker_command_runs_alone_with_a_cli_context``.
    """
    if any(app.user_options.values()):
        return False
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker

    worker.main(args=args, prog_name=prog_name, obj=CLIContext(app=app, no_color=False, workdir=None, quiet=False))
    return True


# -- the app, its settings, the current app and task ---------------------------------


def new_setting_name(key: str) -> str | None:
    """The setting an old upper-case name stands for (``CELERY_RESULT_BACKEND`` -> ``result_backend``), or None.

    Relies on ``celery.app.defaults._TO_NEW_KEY`` (Celery 5.4-5.7).
    Contract test: ``test_old_setting_names_map``.
    """
    return _TO_NEW_KEY.get(key)  # type: ignore[no-any-return]


def swap_settings_class(app: Any, cls: type) -> None:
    """Make ``app.conf`` an instance of ``cls``, a subclass of Celery's ``Settings``.

    Through ``object.__setattr__``: Celery's settings view stores attribute
    assignments as settings. Relies on ``Celery._conf`` being the ``Settings`` object
    that ``Celery.conf`` returns (Celery 5.4-5.7).
    Contract test: ``test_app_settings_class_can_be_swapped``.
    """
    object.__setattr__(app._conf, "__class__", cls)


def current_task() -> Any:
    """The task running in this thread, or None.

    Relies on ``celery._state._task_stack.top`` (Celery 5.4-5.7); called per log
    line, so it is that and nothing more.
    Contract test: ``test_task_stack``.
    """
    return _task_stack.top


def current_app_if_set() -> Any:
    """The app made current in this thread, or None if none was (Celery would make a default one).

    Relies on ``celery._state._tls.current_app`` (Celery 5.4-5.7).
    Contract test: ``test_current_app_thread_local``.
    """
    return getattr(_tls, "current_app", None)


def set_current_app(app: Any) -> None:
    """Make ``app`` this thread's current app; None puts back "none set".

    Relies on ``celery._state._set_current_app`` (Celery 5.4-5.7).
    Contract test: ``test_current_app_thread_local``.
    """
    _set_current_app(app)


def task_line_fields(record: logging.LogRecord) -> Mapping[str, Any] | None:
    """The task fields (``id``, ``name``, ...) of one of Celery's own task log lines, else None.

    Relies on ``celery.app.trace`` logging a run's failure, retry or ignore with
    ``extra={'data': context}``, its ``id`` and ``name`` included (Celery 5.4-5.7).
    Called per log line: one read.
    Contract test: ``test_trace_logs_an_ignored_task_with_a_description_mapping``.
    """
    data = getattr(record, "data", None)
    return data if isinstance(data, Mapping) else None


def ignored_task_line(record: logging.LogRecord) -> Mapping[str, Any] | None:
    """The arguments of Celery's "Task name[id] ignored" log line (``name``, ``id``, ``exc``, ...), else None.

    Relies on ``celery.app.trace`` logging a run that ended with ``Ignore`` through
    ``LOG_IGNORED`` (``"Task %(name)s[%(id)s] %(description)s"``) with a mapping of
    arguments whose ``description`` is ``log_policy_ignore.description``, "ignored",
    and whose ``exc`` is the exception's repr (Celery 5.4-5.7).
    Contract test: ``test_trace_logs_an_ignored_task_with_a_description_mapping``.
    """
    args = record.args
    if isinstance(args, Mapping) and args.get("description") == "ignored":
        return args
    return None


# -- kombu transports -------------------------------------------------------------------


def shadow_can_consume(qos: Any, can_consume: Callable[[], bool]) -> Callable[[], bool]:
    """Make a virtual channel's QoS ask ``can_consume`` whether it may fetch; return the QoS's own.

    Relies on kombu's virtual transport calling ``qos.can_consume()`` through the
    instance, so that an attribute of the instance shadows ``QoS.can_consume``
    (kombu 5.4-5.7). :func:`restore_can_consume` undoes it.
    Contract test: ``test_virtual_qos_can_consume_is_looked_up_on_the_instance``.
    """
    own: Callable[[], bool] = qos.can_consume
    qos.can_consume = can_consume
    return own


def restore_can_consume(qos: Any) -> None:
    """Undo :func:`shadow_can_consume`: the QoS asks its own method again.

    Contract test: ``test_virtual_qos_can_consume_is_looked_up_on_the_instance``.
    """
    qos.__dict__.pop("can_consume", None)


def queue_bindings(channel: Any) -> list[tuple[tuple[str, str, str], Any]]:
    """Every binding this process made on ``channel``'s connection: ((queue, exchange, routing_key), arguments).

    Relies on the virtual transport's ``BrokerState.bindings``, a dict keyed by
    (queue, exchange, routing_key) (kombu 5.4-5.7).
    Contract test: ``test_virtual_transport_api_the_embedded_broker_implements``.
    """
    return list(channel.state.bindings.items())


def read_redis_item(read: Callable[..., Any], options: dict[str, Any], dropped: Callable[[Exception], bool]) -> Any:
    """The body of ``Channel._brpop_read``: kombu's ``read(**options)``, with a bad item dropped.

    ``read`` is kombu's own (``super()._brpop_read``): it pops one item, decodes it
    and delivers it, returning True. When it raises, ``dropped(exc)`` says whether
    the item was at fault (and logged it); then it is gone, and the read counts as
    done, as kombu's own does. Relies on ``kombu.transport.redis.Channel._brpop_read(**options)``
    and its True for an item read (kombu 5.4-5.7).
    Contract test: ``test_redis_brpop_read``.
    """
    try:
        return read(**options)
    except Exception as exc:
        if not dropped(exc):
            raise
        return True


# -- celery.backends ------------------------------------------------------------------


def encoded_result_meta(
    backend: Any, task_id: Any, result: Any, state: str, traceback: Any, request: Any, *, extended: bool = True
) -> Any:
    """What Celery's key-value result backends store for a task's new state: its meta, encoded.

    The first half of ``BaseKeyValueStoreBackend._store_result``: the meta that
    ``Backend._get_result_meta(result=, state=, traceback=, request=)`` makes, with
    ``task_id`` added, through ``backend.encode``. Relies on ``_get_result_meta`` and
    its keyword arguments (Celery 5.4-5.7).

    ``extended`` is ``result_extended``, which the caller reads once. Without it the meta
    is made here, with the keys and values ``_get_result_meta`` makes: that method looks
    the setting up in the app's configuration for every state stored, the dearest part
    of it (a pool process stores two states per run). With it, Celery makes the meta.
    Contract test: ``test_redis_result_backend_stores_what_celery_stores`` (both ways).
    """
    if extended:
        meta = backend._get_result_meta(result=result, state=state, traceback=traceback, request=request)
    else:
        meta = {
            "status": state,
            "result": result,
            "traceback": traceback,
            "children": backend.current_task_children(request),
            "date_done": backend.app.now().isoformat() if state in backend.READY_STATES else None,
        }
        if request and getattr(request, "group", None):
            meta["group_id"] = request.group
        if request and getattr(request, "parent_id", None):
            meta["parent_id"] = request.parent_id
    meta["task_id"] = bytes_to_str(task_id)
    return backend.encode(meta)


def redis_value_limit(backend: Any) -> int:
    """The longest value Celery's Redis result backend stores (it raises BackendStoreError beyond).

    Relies on ``RedisBackend._MAX_STR_VALUE_SIZE`` (512 MiB, Celery 5.4-5.7).
    Contract test: ``test_redis_result_backend_stores_what_celery_stores``.
    """
    return int(backend._MAX_STR_VALUE_SIZE)


# -- prometheus_client -------------------------------------------------------------------


def use_prometheus_multiprocess_values() -> None:
    """Make metrics created from now on in this process multiprocess ones.

    prometheus_client picks its value class when it is imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; a plugin may have imported it before the variable
    was set. It reads ``values.ValueClass`` whenever a metric is made, so replacing
    it is enough. Relies on ``prometheus_client.values.ValueClass`` (its
    ``_multiprocess`` flag) and ``values.MultiProcessValue()`` (prometheus_client
    0.26). Raises ImportError without prometheus_client.
    Contract test: ``test_prometheus_value_class``.
    """
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()

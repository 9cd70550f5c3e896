"""What core and utils take from Celery, kombu, billiard and prometheus_client beyond their documented API.

Every such touch is in one adapter module per package, ``girder_worker._celery_internals``
and ``girder_worker_utils._celery_internals``, one function per touch point. One test
here per point, on the installed releases (``hatch run compat:test`` runs them on
each supported Celery/kombu minor). Each failure names the attribute, the releases
installed and the adapter function that relies on it: that function has to change
with the release (and only it: the rest of the code calls it).
"""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime

import billiard
import celery
import kombu
import pytest
from celery import Celery
from kombu.message import Message

VERSIONS = f"celery {celery.__version__}, kombu {kombu.__version__}, billiard {billiard.__version__}"


def broken(what: str, *users: str) -> str:
    """The failure message: what changed, in which versions, and which functions of ours rely on it.

    ``users`` are core's as ``"_celery_internals.name"`` and utils' in full.
    """
    relying = ", ".join(user if user.startswith("girder_worker_utils") else f"girder_worker.{user}" for user in users)
    return f"{what} is gone or changed in {VERSIONS}; {relying} relies on it"


def source_of(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


def task_message(app: Celery, name: str, args: tuple[object, ...], **options: float) -> Message:
    """A real task message for ``name``, as a worker's consumer receives it."""
    sent = app.amqp.as_task_v2(str(uuid.uuid4()), name, args=args, kwargs={}, **options)
    return Message(
        body=json.dumps(sent.body),
        content_type="application/json",
        content_encoding="utf-8",
        headers=sent.headers,
        properties=sent.properties,
        delivery_info={"exchange": "", "routing_key": "celery"},
        delivery_tag=1,
    )


@pytest.fixture(scope="module")
def request_of():
    """A real Celery Request made from a real task message."""
    from celery.worker.request import Request

    app = Celery(set_as_current=False, broker="memory://")

    @app.task(name="compat.echo")
    def echo(x):
        return x

    def make(**options: float) -> tuple[Request, Message]:
        message = task_message(app, "compat.echo", (1,), **options)
        return Request(message, app=app, task=app.tasks["compat.echo"]), message

    yield make
    app.close()


# -- celery.worker.request.Request ------------------------------------------------


def test_request_message(request_of):
    request, message = request_of()
    assert getattr(request, "_message", None) is message, broken(
        "Request._message", "_celery_internals.request_message"
    )


def test_request_dict_retries(request_of):
    request, _ = request_of()
    found = getattr(request, "_request_dict", None)
    assert isinstance(found, dict), broken("Request._request_dict", "_celery_internals.request_retries")
    assert found.get("retries") == 0, broken("Request._request_dict['retries']", "_celery_internals.request_retries")


def test_a_key_put_in_the_request_dict_reaches_the_run():
    from celery.worker.request import Request

    from girder_worker._celery_internals import pass_to_run

    user = "_celery_internals.pass_to_run"
    app = Celery(set_as_current=False, broker="memory://")
    seen = []

    @app.task(name="compat.sees", bind=True)
    def sees(self):
        seen.append(getattr(self.request, "compat_lease", None))

    request = Request(task_message(app, "compat.sees", ()), app=app, task=sees)
    pass_to_run(request, "compat_lease", {"holder": "h"})
    handed = []

    class RecordingPool:  # what Request.execute_using_pool hands a pool: the run's target and arguments
        def apply_async(self, target, args=None, kwargs=None, **options):
            handed.append((target, args, kwargs or {}))

    request.execute_using_pool(RecordingPool())
    assert len(handed) == 1, broken("Request.execute_using_pool calling pool.apply_async once", user)
    target, args, kwargs = handed[0]
    target(*args, app=app, **kwargs)  # the run, as a pool process makes it
    assert seen == [{"holder": "h"}], broken("Request._request_dict reaching the run's task.request", user)
    app.close()


def test_request_already_revoked(request_of):
    request, _ = request_of()
    user = "_celery_internals.terminated_on_purpose"
    for name in ("_already_revoked", "_already_cancelled"):
        assert getattr(request, name, None) is False, broken(f"Request.{name}", user)
        assert f"self.{name} = True" in source_of(type(request)), broken(f"Request setting {name} = True", user)


def test_request_on_ack_is_assignable(request_of):
    request, message = request_of()
    users = ("_celery_internals.swap_acknowledgement",)
    assert callable(getattr(request, "_on_ack", None)), broken("Request._on_ack", *users)
    request._on_ack = message.ack_log_error
    assert request._on_ack == message.ack_log_error, broken("assigning Request._on_ack", *users)
    assert "self._on_ack(logger, self._connection_errors)" in source_of(type(request).acknowledge), broken(
        "Request.acknowledge calling _on_ack(logger, connection_errors)", *users
    )


def test_request_callbacks_are_replaceable_per_instance(request_of):
    request, _ = request_of()
    mine = []
    request.on_success = lambda *args, **kwargs: mine.append("success")
    request.on_failure = lambda *args, **kwargs: mine.append("failure")
    request.on_success((False, 1, 0.0))
    request.on_failure(None)
    user = "_celery_internals.replace_request_callbacks"
    assert mine == ["success", "failure"], broken("Request.on_success/on_failure per instance", user)
    pooled = source_of(type(request).execute_using_pool)
    for handed in ("callback=self.on_success", "error_callback=self.on_failure"):
        assert handed in pooled, broken(f"Request.execute_using_pool's {handed}", user)


def test_request_hands_its_on_timeout_to_the_pool(request_of):
    request, _ = request_of()
    pooled = source_of(type(request).execute_using_pool)
    assert "timeout_callback=self.on_timeout" in pooled, broken(
        "Request.execute_using_pool's timeout_callback=self.on_timeout (read back as __self__)",
        "_celery_internals.request_of_pool_call",
    )
    assert getattr(request.on_timeout, "__self__", None) is request, broken(
        "Request.on_timeout as a bound method", "_celery_internals.request_of_pool_call"
    )


def test_request_class_binds_the_pools_apply_async_when_made():
    from celery.worker.request import create_request_cls

    user = "_celery_internals.wrap_pool_apply_async"
    assert "pool" in inspect.signature(create_request_cls).parameters, broken("create_request_cls(pool=...)", user)
    assert "pool.apply_async" in source_of(create_request_cls), broken(
        "create_request_cls reading pool.apply_async", user
    )


# -- the worker and its consumer -----------------------------------------------------


def test_work_controller_process_task():
    from celery.worker import WorkController

    method = getattr(WorkController, "_process_task", None)
    assert callable(method), broken("WorkController._process_task", "_celery_internals.process_task")
    assert list(inspect.signature(method).parameters) == ["self", "req"], broken(
        "WorkController._process_task(self, req)", "_celery_internals.process_task"
    )


def test_pool_step_sets_quick_release_and_reads_the_time_limits():
    from celery.worker.components import Pool

    made = source_of(Pool.create)
    assert "w._quick_release = " in made, broken(
        "the Pool bootstep setting WorkController._quick_release", "_celery_internals.process_task"
    )
    for read in ("w.time_limit", "w.soft_time_limit"):
        assert read in made, broken(
            f"the Pool bootstep reading {read} in create()", "_celery_internals.take_worker_time_limits"
        )


def test_consumer_maximum_prefetch_restored():
    from celery.worker.consumer.consumer import Consumer

    user = "_celery_internals.chains_acknowledgement"
    assert "self._maximum_prefetch_restored" in source_of(Consumer), broken("Consumer._maximum_prefetch_restored", user)
    assert isinstance(getattr(Consumer, "restart_count", None), int), broken("Consumer.restart_count", user)


def test_worker_state_collections():
    from celery.worker import state

    users = {
        "revoked": (
            "_celery_internals.is_revoked",
            "_celery_internals.mark_revoked",
            "girder_worker_utils._celery_internals.is_revoked",
        ),
        "active_requests": ("_celery_internals.active_requests", "_celery_internals.is_active"),
        "reserved_requests": ("_celery_internals.reserved_requests", "_celery_internals.reserved_count"),
    }
    for name, relying in users.items():
        assert hasattr(state, name), broken(f"celery.worker.state.{name}", *relying)
    for name in ("active_requests", "reserved_requests"):
        found = getattr(state, name)
        for method in ("__len__", "__iter__", "__contains__"):
            assert hasattr(found, method), broken(f"celery.worker.state.{name}.{method}", *users[name])
    assert callable(getattr(state, "task_ready", None)), broken(
        "celery.worker.state.task_ready", "_celery_internals.task_ready"
    )
    task_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    state.revoked.add(task_id)
    state.revoked.update([other])
    try:
        assert task_id in state.revoked, broken("celery.worker.state.revoked.add/in", *users["revoked"])
        assert other in state.revoked, broken("celery.worker.state.revoked.update", *users["revoked"])
    finally:
        state.revoked.discard(task_id)
        state.revoked.discard(other)


def test_builtin_revoke_command_can_be_replaced():
    from celery.worker import control

    user = "_celery_internals.replace_revoke_command"
    assert callable(getattr(control, "control_command", None)), broken("celery.worker.control.control_command", user)
    assert "revoke" in control.Panel.data, broken("celery.worker.control.Panel.data['revoke']", user)
    name = f"compat_{uuid.uuid4().hex[:8]}"

    @control.control_command(name=name, variadic="task_id", signature="[id1 [id2]]")
    def command(state, task_id):
        return {"ok": task_id}

    try:
        meta = control.Panel.meta[name]
        assert (meta.variadic, meta.signature) == ("task_id", "[id1 [id2]]"), broken(
            "control_command(variadic=, signature=) recorded in Panel.meta", user
        )
        assert control.Panel.data[name] is command, broken("control_command registering in Panel.data", user)
    finally:
        control.Panel.data.pop(name, None)
        control.Panel.meta.pop(name, None)


def test_billiard_worker_lost_text():
    from billiard import pool
    from billiard.exceptions import WorkerLostError

    assert issubclass(WorkerLostError, Exception)
    assert "Worker exited prematurely: " in source_of(pool), broken(
        "billiard's WorkerLostError text 'Worker exited prematurely: ...'", "_celery_internals.worker_lost_detail"
    )


# -- the app, its settings and its command line ------------------------------------


def test_worker_command_runs_alone_with_a_cli_context():
    """``girder-worker`` runs Celery's ``worker`` command without the ``celery`` group: the
    command must take its app and settings from a ``CLIContext`` on ``ctx.obj``, and the
    group must do nothing else for ``-A APP worker``."""
    import click
    from celery.bin import base, worker
    from celery.bin import celery as group

    user = "_celery_internals.run_worker_command"
    assert isinstance(worker.worker, click.Command), broken("celery.bin.worker.worker (a click command)", user)
    params = inspect.signature(base.CLIContext).parameters
    assert list(params)[:4] == ["app", "no_color", "workdir", "quiet"], broken("celery.bin.base.CLIContext", user)
    app = Celery(set_as_current=False)
    app.conf.worker_concurrency = 7
    try:
        context = base.CLIContext(app=app, no_color=False, workdir=None, quiet=False)
        ctx = worker.worker.make_context("girder-worker worker", ["-P", "solo", "-l", "info"], obj=context)
        # An option whose default comes from the app reads it from ctx.obj.
        assert ctx.params["concurrency"] == 7, broken("celery.bin.worker.worker reading ctx.obj.app", user)
    finally:
        app.close()
    # What the group's callback does: global options (none given), the app, the context,
    # and the app's user options (which run_worker_command leaves to the group).
    body = source_of(group.celery.callback)
    for step in ("CLIContext(app=app", "user_options.get('worker'", "user_options.get('preload'"):
        assert step in body, broken(f"the celery group's callback ({step!r})", user)
    assert body.count("os.environ[") == 5, broken("the celery group's callback (global options only)", user)


def test_old_setting_names_map():
    from celery.app import defaults

    mapping = getattr(defaults, "_TO_NEW_KEY", None)
    user = "_celery_internals.new_setting_name"
    assert isinstance(mapping, dict), broken("celery.app.defaults._TO_NEW_KEY", user)
    assert mapping.get("CELERY_RESULT_BACKEND") == "result_backend", broken(
        "celery.app.defaults._TO_NEW_KEY['CELERY_RESULT_BACKEND']", user
    )


def test_app_settings_class_can_be_swapped():
    from celery.app.utils import Settings

    app = Celery(set_as_current=False)
    try:
        conf = getattr(app, "_conf", None)
        user = "_celery_internals.swap_settings_class"
        assert isinstance(conf, Settings), broken("Celery._conf as a celery.app.utils.Settings", user)

        class Mine(type(conf)):  # type: ignore[misc]
            pass

        object.__setattr__(conf, "__class__", Mine)
        assert type(app.conf) is Mine, broken("Celery.conf returning Celery._conf", user)
    finally:
        app.close()


def test_task_stack():
    from celery import _state

    stack = getattr(_state, "_task_stack", None)
    relying = (
        "_celery_internals.current_task",
        "girder_worker_utils._celery_internals.running_task",
        "girder_worker_utils._celery_internals.running_app",
        "girder_worker_utils._celery_internals.app_in_use",
    )
    for name in ("top", "push", "pop"):
        assert hasattr(stack, name), broken(f"celery._state._task_stack.{name}", *relying)
    assert callable(getattr(_state, "get_current_app", None)), broken(
        "celery._state.get_current_app", "girder_worker_utils._celery_internals.app_in_use"
    )
    app = Celery(set_as_current=False)
    try:

        @app.task(name="compat.top")
        def top():
            return None

        assert getattr(top, "_app", None) is app, broken(
            "Task._app",
            "girder_worker_utils._celery_internals.running_app",
            "girder_worker_utils._celery_internals.app_in_use",
        )
        stack.push(top)
        try:
            assert stack.top is top, broken("celery._state._task_stack.top after push", *relying)
        finally:
            stack.pop()
    finally:
        app.close()


def test_current_app_thread_local():
    from celery import _state

    relying = ("_celery_internals.current_app_if_set", "_celery_internals.set_current_app")
    tls = getattr(_state, "_tls", None)
    assert tls is not None, broken("celery._state._tls", *relying)
    assert callable(getattr(_state, "_set_current_app", None)), broken("celery._state._set_current_app", *relying)
    previous = getattr(tls, "current_app", None)
    app = Celery(set_as_current=False)
    try:
        _state._set_current_app(app)
        assert getattr(tls, "current_app", None) is app, broken(
            "celery._state._set_current_app setting _tls.current_app", *relying
        )
        _state._set_current_app(None)
        assert getattr(tls, "current_app", None) is None, broken(
            "celery._state._set_current_app(None) leaving no current app", *relying
        )
    finally:
        _state._set_current_app(previous)
        app.close()


# -- kombu transports ---------------------------------------------------------------


def test_redis_brpop_read():
    from kombu.transport import redis

    read = getattr(redis.Channel, "_brpop_read", None)
    user = "_celery_internals.read_redis_item"
    assert callable(read), broken("kombu.transport.redis.Channel._brpop_read", user)
    parameters = inspect.signature(read).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), broken(
        "Channel._brpop_read(**options)", user
    )
    assert "return True" in source_of(read), broken("Channel._brpop_read returning True for an item read", user)


# -- celery.backends ------------------------------------------------------------------


def _when_shown(meta: dict) -> dict:
    """``meta`` with its ``date_done`` (a time, which differs between two stores) replaced by its form."""
    done = meta.get("date_done")
    if isinstance(done, str):
        meta["date_done"] = "ISO 8601, " + ("with" if datetime.fromisoformat(done).tzinfo else "without") + " offset"
    return meta


def _result_store_trace(backend_class: type, db: int, extended: bool) -> list:
    """The records, lifetimes and announcements a backend leaves in Redis db ``db`` for a
    sequence of states that covers every rule of Celery's store: a state replacing another,
    FAILURE's own lifetime, a SUCCESS that a later state must not replace, extended meta
    (``result_extended``) or not, a run in a group with a parent."""
    import redis
    from celery import states

    url = f"redis://127.0.0.1:6379/{db}"
    app = Celery(set_as_current=False, broker="memory://", backend=url)
    app.conf.update(result_extended=extended, result_serializer="json", result_failure_expires=123)
    backend = backend_class(app=app, url=url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    pubsub = client.pubsub()
    first, second = "compat-result-1", "compat-result-2"
    pubsub.subscribe(*(backend.get_key_for_task(t) for t in (first, second)))
    pubsub.get_message(timeout=1)
    pubsub.get_message(timeout=1)

    class Request:
        id, task, args, kwargs, hostname, retries, delivery_info = first, "compat.echo", (1,), {}, "h", 0, {}
        parent_id, root_id, group = "compat-parent", "compat-root", "compat-group"
        group_index = chord = None
        ignore_result = False

    trace = []
    for task_id, result, state in [
        (first, {"pid": 1, "hostname": "h"}, states.STARTED),
        (first, {"current": 1, "total": 3}, "PROGRESS"),
        (first, {"answer": [1, "two", None]}, states.SUCCESS),
        (first, {"pid": 2, "hostname": "h"}, states.STARTED),
        (second, ValueError("bad input"), states.FAILURE),
    ]:
        Request.id = task_id
        traceback = "Traceback ...\nValueError: bad input" if state == states.FAILURE else None
        backend.store_result(task_id, result, state, traceback=traceback, request=Request)
        key = backend.get_key_for_task(task_id)
        stored = _when_shown(json.loads(client.get(key)))
        message = pubsub.get_message(timeout=1)
        announced = _when_shown(json.loads(message["data"])) if message else None
        trace.append((state, stored, client.ttl(key), announced))
    pubsub.close()
    client.flushdb()
    app.close()
    return trace


# Celery's own RedisBackend (5.4-5.6) stores with redis-py's setex, which redis-py 8 deprecates.
@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
@pytest.mark.parametrize("extended", [True, False], ids=["result_extended", "plain_meta"])
def test_redis_result_backend_stores_what_celery_stores(extended):
    """girder-worker's one-round-trip Redis result backend leaves exactly what Celery's own leaves."""
    from celery.backends.redis import RedisBackend

    from girder_worker.broker._redis_results import ResultBackend

    users = ("_celery_internals.encoded_result_meta", "_celery_internals.redis_value_limit")
    assert isinstance(getattr(RedisBackend, "_MAX_STR_VALUE_SIZE", None), int), broken(
        "RedisBackend._MAX_STR_VALUE_SIZE", *users
    )
    assert "_get_result_meta" in source_of(RedisBackend._store_result), broken(
        "BaseKeyValueStoreBackend._store_result calling _get_result_meta", *users
    )
    theirs = _result_store_trace(RedisBackend, 14, extended)
    ours = _result_store_trace(ResultBackend, 15, extended)
    assert ours == theirs, broken("what Celery's Redis result backend stores for a state", *users)
    # The rules themselves, so that the comparison cannot pass on two equally wrong stores.
    assert [t[1]["status"] for t in ours] == ["STARTED", "PROGRESS", "SUCCESS", "SUCCESS", "FAILURE"]
    assert ours[3][3] is None, "a STARTED after the SUCCESS was announced"
    assert 0 < ours[0][2] <= 86400, "result_expires"
    if getattr(RedisBackend, "supports_failure_expires", False):  # Celery >= 5.7
        assert ours[4][2] == 123, "FAILURE's own lifetime (result_failure_expires)"
    else:
        assert 0 < ours[4][2] <= 86400, "FAILURE's lifetime (result_expires, before result_failure_expires)"
    assert (ours[2][1]["group_id"], ours[2][1]["parent_id"]) == ("compat-group", "compat-parent")
    assert ours[2][1]["task_id"] == "compat-result-1"
    if extended:
        assert ours[2][1]["name"] == "compat.echo", "extended meta"
        assert ours[2][1]["args"] == [1], "extended meta"
    else:
        assert set(ours[2][1]) == {"status", "result", "traceback", "children", "date_done", "group_id",
                                   "parent_id", "task_id"}, "meta without result_extended"  # fmt: skip


def test_virtual_qos_can_consume_is_looked_up_on_the_instance():
    from kombu.transport import virtual

    relying = ("_celery_internals.shadow_can_consume", "_celery_internals.restore_can_consume")
    assert callable(getattr(virtual.QoS, "can_consume", None)), broken("kombu virtual QoS.can_consume", *relying)
    assert "qos.can_consume()" in source_of(virtual.Channel) or "can_consume()" in source_of(virtual), broken(
        "the virtual transport polling qos.can_consume()", *relying
    )


def test_virtual_transport_api_the_embedded_broker_implements():
    from kombu.transport import virtual

    for name in ("_put", "_get", "_purge", "_size", "_delete", "_new_queue", "_has_queue", "get_table", "typeof"):
        assert callable(getattr(virtual.Channel, name, None)), broken(
            f"kombu virtual Channel.{name}", "broker._embedded"
        )
    assert "_put_fanout" in source_of(virtual.exchange.FanoutExchange), broken(
        "kombu's fanout exchange calling Channel._put_fanout", "broker._embedded"
    )
    bindings = getattr(virtual.BrokerState(), "bindings", None)
    assert isinstance(bindings, dict), broken("kombu virtual BrokerState.bindings", "_celery_internals.queue_bindings")
    state = virtual.BrokerState()
    state.binding_declare("compat.queue", "compat.exchange", "compat.key", {"x": 1})
    assert list(state.bindings.items()) == [(("compat.queue", "compat.exchange", "compat.key"), {"x": 1})], broken(
        "BrokerState.bindings as {(queue, exchange, routing_key): arguments}", "_celery_internals.queue_bindings"
    )


# -- added with the monitoring work (events, time limits, log lines) ---------------


def test_request_time_limits_are_the_messages_hard_then_soft(request_of):
    request, _ = request_of()
    user = "_celery_internals.request_time_limits"
    assert tuple(getattr(request, "time_limits", ())) == (None, None), broken("Request.time_limits", user)
    limited, _ = request_of(time_limit=4.0, soft_time_limit=2.0)
    assert tuple(getattr(limited, "time_limits", ())) == (4.0, 2.0), broken(
        "Request.time_limits as the message's (hard, soft)", user
    )
    assert "time_limit, soft_time_limit = self.time_limits" in source_of(type(request).execute_using_pool), broken(
        "Request.time_limits as (hard, soft)", user
    )


def test_consumer_event_dispatcher_and_worker_task_events():
    from celery.worker.consumer.events import Events
    from celery.worker.worker import WorkController

    assert "c.event_dispatcher = c.app.events.Dispatcher(" in source_of(Events.start), broken(
        "Consumer.event_dispatcher set by the Events bootstep", "_celery_internals.event_dispatcher"
    )
    assert "self.task_events = " in source_of(WorkController.setup_defaults), broken(
        "WorkController.task_events", "monitoring._task_events"
    )


def test_worker_consumer_is_set_by_its_bootstep():
    from celery.worker.components import Consumer as ConsumerStep

    assert "w.consumer = " in source_of(ConsumerStep.create), broken(
        "WorkController.consumer set by the Consumer bootstep", "_celery_internals.event_dispatcher"
    )


def test_trace_logs_an_ignored_task_with_a_description_mapping():
    from celery.app import trace

    relying = ("_celery_internals.ignored_task_line", "_celery_internals.task_line_fields")
    assert trace.log_policy_ignore.description == "ignored", broken("celery.app.trace.log_policy_ignore", *relying)
    assert "%(description)s" in trace.LOG_IGNORED, broken("celery.app.trace.LOG_IGNORED", *relying)
    logged = source_of(trace.TraceInfo._log_error)
    for entry in ("'description': policy.description", "'exc': exception", "'id': req.id", "'name': "):
        assert entry in logged, broken(f"TraceInfo._log_error's mapping of log arguments ({entry})", *relying)
    assert "extra={'data': context}" in logged, broken("TraceInfo._log_error's extra={'data': context}", *relying)


# -- prometheus_client (the metrics extra) --------------------------------------------


def test_prometheus_value_class():
    values = pytest.importorskip("prometheus_client.values")
    metrics = pytest.importorskip("prometheus_client.metrics")

    user = "_celery_internals.use_prometheus_multiprocess_values"
    found = getattr(values, "ValueClass", None)
    assert isinstance(found, type), broken("prometheus_client.values.ValueClass", user)
    assert isinstance(getattr(found, "_multiprocess", None), bool), broken(
        "prometheus_client.values.ValueClass._multiprocess", user
    )
    make = getattr(values, "MultiProcessValue", None)
    assert callable(make), broken("prometheus_client.values.MultiProcessValue", user)
    assert getattr(make(), "_multiprocess", None) is True, broken(
        "prometheus_client.values.MultiProcessValue()._multiprocess", user
    )
    assert "values.ValueClass(" in source_of(metrics), broken(
        "prometheus_client's metrics reading values.ValueClass when made", user
    )

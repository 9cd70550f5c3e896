"""What core and utils take from Celery, kombu and billiard beyond their documented API.

One test per touch point, on the installed releases (``hatch run compat:test`` runs
them on each supported Celery/kombu minor). Each failure names the attribute, the
release that changed it and the girder-worker module that relies on it: that module
has to change with the release.
"""

from __future__ import annotations

import inspect
import json
import uuid

import billiard
import celery
import kombu
import pytest
from celery import Celery
from kombu.message import Message

VERSIONS = f"celery {celery.__version__}, kombu {kombu.__version__}, billiard {billiard.__version__}"


def broken(what: str, *users: str) -> str:
    """The failure message: what changed, in which versions, and which modules of ours rely on it."""
    relying = ", ".join(user if user.startswith("girder_worker_utils") else f"girder_worker.{user}" for user in users)
    return f"{what} is gone or changed in {VERSIONS}; {relying} relies on it"


def source_of(obj: object) -> str:
    return inspect.getsource(obj)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def request_of():
    """A real Celery Request made from a real task message."""
    from celery.worker.request import Request

    app = Celery(set_as_current=False, broker="memory://")

    @app.task(name="compat.echo")
    def echo(x):
        return x

    def make() -> tuple[Request, Message]:
        task_id = str(uuid.uuid4())
        sent = app.amqp.as_task_v2(task_id, "compat.echo", args=(1,), kwargs={})
        message = Message(
            body=json.dumps(sent.body),
            content_type="application/json",
            content_encoding="utf-8",
            headers=sent.headers,
            properties=sent.properties,
            delivery_info={"exchange": "", "routing_key": "celery"},
            delivery_tag=1,
        )
        return Request(message, app=app, task=app.tasks["compat.echo"]), message

    yield make
    app.close()


# -- celery.worker.request.Request ------------------------------------------------


def test_request_message(request_of):
    request, message = request_of()
    assert getattr(request, "_message", None) is message, broken("Request._message", "delivery._delivery", "_worker")


def test_request_dict_retries(request_of):
    request, _ = request_of()
    found = getattr(request, "_request_dict", None)
    assert isinstance(found, dict), broken("Request._request_dict", "delivery._delivery")
    assert found.get("retries") == 0, broken("Request._request_dict['retries']", "delivery._delivery")


def test_request_already_revoked(request_of):
    request, _ = request_of()
    assert getattr(request, "_already_revoked", None) is False, broken("Request._already_revoked", "delivery._delivery")


def test_request_on_ack_is_assignable(request_of):
    request, message = request_of()
    assert callable(getattr(request, "_on_ack", None)), broken("Request._on_ack", "_worker")
    request._on_ack = message.ack_log_error
    assert request._on_ack == message.ack_log_error, broken("assigning Request._on_ack", "_worker")
    assert "self._on_ack(" in source_of(type(request).acknowledge), broken(
        "Request.acknowledge calling _on_ack", "_worker"
    )


def test_request_callbacks_are_replaceable_per_instance(request_of):
    request, _ = request_of()
    mine = []
    request.on_success = lambda *args, **kwargs: mine.append("success")
    request.on_failure = lambda *args, **kwargs: mine.append("failure")
    request.on_success((False, 1, 0.0))
    request.on_failure(None)
    assert mine == ["success", "failure"], broken("Request.on_success/on_failure per instance", "delivery._delivery")
    pooled = source_of(type(request).execute_using_pool)
    for handed in ("callback=self.on_success", "error_callback=self.on_failure"):
        assert handed in pooled, broken(f"Request.execute_using_pool's {handed}", "delivery._delivery")


def test_request_hands_its_on_timeout_to_the_pool(request_of):
    request, _ = request_of()
    pooled = source_of(type(request).execute_using_pool)
    assert "timeout_callback=self.on_timeout" in pooled, broken(
        "Request.execute_using_pool's timeout_callback=self.on_timeout (read back as __self__)",
        "cancellation._timelimit",
    )
    assert request.on_timeout.__self__ is request, broken(
        "Request.on_timeout as a bound method", "cancellation._timelimit"
    )


def test_request_class_binds_the_pools_apply_async_when_made():
    from celery.worker.request import create_request_cls

    assert "pool" in inspect.signature(create_request_cls).parameters, broken(
        "create_request_cls(pool=...)", "cancellation._timelimit"
    )
    assert "pool.apply_async" in source_of(create_request_cls), broken(
        "create_request_cls reading pool.apply_async", "cancellation._timelimit"
    )


# -- the worker and its consumer -----------------------------------------------------


def test_work_controller_process_task():
    from celery.worker import WorkController

    method = getattr(WorkController, "_process_task", None)
    assert callable(method), broken("WorkController._process_task", "_worker")
    assert list(inspect.signature(method).parameters) == ["self", "req"], broken(
        "WorkController._process_task(self, req)", "_worker"
    )


def test_pool_step_sets_quick_release_and_reads_the_time_limits():
    from celery.worker.components import Pool

    made = source_of(Pool.create)
    assert "_quick_release" in made, broken("the Pool bootstep setting WorkController._quick_release", "_worker")
    for read in ("w.time_limit", "w.soft_time_limit"):
        assert read in made, broken(f"the Pool bootstep reading {read} in create()", "cancellation._timelimit")


def test_consumer_maximum_prefetch_restored():
    from celery.worker.consumer.consumer import Consumer

    assert "self._maximum_prefetch_restored" in source_of(Consumer), broken(
        "Consumer._maximum_prefetch_restored", "_worker"
    )
    assert isinstance(getattr(Consumer, "restart_count", None), int), broken("Consumer.restart_count", "_worker")


def test_worker_state_collections():
    from celery.worker import state

    for name in ("revoked", "active_requests", "reserved_requests"):
        assert hasattr(state, name), broken(
            f"celery.worker.state.{name}",
            "cancellation._cancel",
            "delivery._delivery",
            "broker._consumer",
            "girder_worker_utils",
        )
    assert callable(getattr(state, "task_ready", None)), broken("celery.worker.state.task_ready", "delivery._delivery")
    task_id = str(uuid.uuid4())
    state.revoked.add(task_id)
    try:
        assert task_id in state.revoked, broken(
            "celery.worker.state.revoked.add/in", "cancellation._cancel", "girder_worker_utils' Task"
        )
    finally:
        state.revoked.discard(task_id)


def test_builtin_revoke_command_can_be_replaced():
    from celery.worker import control

    assert callable(getattr(control, "control_command", None)), broken(
        "celery.worker.control.control_command", "cancellation._cancel"
    )
    assert "revoke" in control.Panel.data, broken("celery.worker.control.Panel.data['revoke']", "cancellation._cancel")
    name = f"compat_{uuid.uuid4().hex[:8]}"

    @control.control_command(name=name, variadic="task_id", signature="[id1 [id2]]")
    def command(state, task_id):
        return {"ok": task_id}

    try:
        meta = control.Panel.meta[name]
        assert (meta.variadic, meta.signature) == ("task_id", "[id1 [id2]]"), broken(
            "control_command(variadic=, signature=) recorded in Panel.meta", "cancellation._cancel"
        )
        assert control.Panel.data[name] is command, broken(
            "control_command registering in Panel.data", "cancellation._cancel"
        )
    finally:
        control.Panel.data.pop(name, None)
        control.Panel.meta.pop(name, None)


def test_billiard_worker_lost_text():
    from billiard import pool
    from billiard.exceptions import WorkerLostError

    assert issubclass(WorkerLostError, Exception)
    assert "Worker exited prematurely: " in source_of(pool), broken(
        "billiard's WorkerLostError text 'Worker exited prematurely: ...'", "delivery._delivery"
    )


# -- the app, its settings and its command line ------------------------------------


def test_old_setting_names_map():
    from celery.app import defaults

    mapping = getattr(defaults, "_TO_NEW_KEY", None)
    assert isinstance(mapping, dict), broken("celery.app.defaults._TO_NEW_KEY", "_settings")
    assert mapping.get("CELERY_RESULT_BACKEND") == "result_backend", broken(
        "celery.app.defaults._TO_NEW_KEY['CELERY_RESULT_BACKEND']", "_settings"
    )


def test_app_settings_class_can_be_swapped():
    from celery.app.utils import Settings

    app = Celery(set_as_current=False)
    try:
        conf = app._conf
        assert isinstance(conf, Settings), broken("Celery._conf as a celery.app.utils.Settings", "_app")

        class Mine(type(conf)):  # type: ignore[misc]
            pass

        object.__setattr__(conf, "__class__", Mine)
        assert type(app.conf) is Mine, broken("Celery.conf returning Celery._conf", "_app")
    finally:
        app.close()


def test_task_stack():
    from celery import _state

    stack = getattr(_state, "_task_stack", None)
    for name in ("top", "push", "pop"):
        assert hasattr(stack, name), broken(
            f"celery._state._task_stack.{name}", "girder_worker_utils' Task", "girder._publish"
        )
    app = Celery(set_as_current=False)
    try:

        @app.task(name="compat.top")
        def top():
            return None

        assert top._app is app, broken("Task._app", "girder_worker_utils' decorator")
    finally:
        app.close()


# -- kombu transports ---------------------------------------------------------------


def test_redis_brpop_read():
    from kombu.transport import redis

    read = getattr(redis.Channel, "_brpop_read", None)
    assert callable(read), broken("kombu.transport.redis.Channel._brpop_read", "broker._redis")
    parameters = inspect.signature(read).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), broken(
        "Channel._brpop_read(**options)", "broker._redis"
    )


def test_virtual_qos_can_consume_is_looked_up_on_the_instance():
    from kombu.transport import virtual

    assert callable(getattr(virtual.QoS, "can_consume", None)), broken(
        "kombu virtual QoS.can_consume", "broker._dispatch"
    )
    assert "qos.can_consume()" in source_of(virtual.Channel) or "can_consume()" in source_of(virtual), broken(
        "the virtual transport polling qos.can_consume()", "broker._dispatch"
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
    assert hasattr(virtual.BrokerState(), "bindings"), broken("kombu virtual BrokerState.bindings", "broker._embedded")


# -- added with the monitoring work (events, time limits, log lines) ---------------


def test_request_time_limits_are_the_messages_hard_then_soft(request_of):
    request, _ = request_of()
    assert tuple(getattr(request, "time_limits", ())) == (None, None), broken(
        "Request.time_limits", "cancellation._timelimit"
    )
    assert "time_limit, soft_time_limit = self.time_limits" in source_of(type(request).execute_using_pool), broken(
        "Request.time_limits as (hard, soft)", "cancellation._timelimit"
    )


def test_consumer_event_dispatcher_and_worker_task_events():
    from celery.worker.consumer.events import Events
    from celery.worker.worker import WorkController

    assert "c.event_dispatcher = c.app.events.Dispatcher(" in source_of(Events.start), broken(
        "Consumer.event_dispatcher set by the Events bootstep", "monitoring._task_events"
    )
    assert "self.task_events = " in source_of(WorkController.setup_defaults), broken(
        "WorkController.task_events", "monitoring._task_events"
    )


def test_trace_logs_an_ignored_task_with_a_description_mapping():
    from celery.app import trace

    assert trace.log_policy_ignore.description == "ignored", broken(
        "celery.app.trace.log_policy_ignore", "monitoring._task_log"
    )
    assert "%(description)s" in trace.LOG_IGNORED, broken("celery.app.trace.LOG_IGNORED", "monitoring._task_log")
    assert "'description': policy.description" in source_of(trace.TraceInfo._log_error), broken(
        "TraceInfo._log_error's mapping of log arguments", "monitoring._task_log"
    )

"""The delivery policy: what happens to a task whose worker is lost while it runs.

Every task has one, declared on the task or taken from the worker's default:

* ``at-least-once`` (the default): the task is delivered again, to any worker,
  until it has started ``max_deliveries`` times; then it fails with
  :class:`~girder_worker_utils.TaskLost` ("worker lost 2 times ...") instead of
  bringing workers down in a loop.
* ``at-most-once``: the task never starts twice; a lost run fails at once.

Losses are seen two ways. A prefork pool process that dies (killed, out of
memory) is seen at once by its worker's main process. A whole worker that dies
stops renewing its heartbeat, and any other worker (or the same one, restarted)
takes over its leases once the heartbeat lapses (``GIRDER_WORKER_LEASE_SECONDS``).
Either way the task's Girder job is told: a log line, and ERROR when it failed.
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, TypeGuard

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery import bootsteps

from girder_worker_utils import Task as GirderWorkerTask
from girder_worker_utils import TaskLost

from .._celery_internals import (
    is_revoked,
    pass_to_run,
    replace_request_callbacks,
    request_message,
    request_retries,
    task_ready,
    terminated_on_purpose,
    worker_lost_detail,
)
from .._config import DELIVERY_POLICIES, Config
from .._outcome import of_lost, store_state
from ..broker._housekeeping import SWEEP_INTERVAL_SECONDS, result_expiry, sweep
from ..cancellation import _moments
from ..monitoring import _metrics
from ._gate import LEASE_KEY, DuplicateRun, StartedGate
from ._leases import DONE, REUSED, RUNNING, Claim, LeaseStore, SqliteLeaseStore, lease_store_for

__all__ = ["AT_LEAST_ONCE", "AT_MOST_ONCE", "Delivery", "DeliveryStep", "Policy", "policy_for", "verdict", "watch_run"]

logger = logging.getLogger("girder_worker.delivery")

AT_LEAST_ONCE, AT_MOST_ONCE = DELIVERY_POLICIES


@dataclass(frozen=True)
class Policy:
    """A task's delivery policy."""

    mode: str
    max_deliveries: int

    def __str__(self) -> str:
        return self.mode if self.mode == AT_MOST_ONCE else f"{self.mode}, max_deliveries {self.max_deliveries}"

    @property
    def limit(self) -> int:
        """How many runs may start in all."""
        return 1 if self.mode == AT_MOST_ONCE else self.max_deliveries


def policy_for(task: Any, config: Config) -> Policy:
    """The policy ``task`` declares, completed with the worker's defaults."""
    mode = getattr(task, "delivery", None) or config.delivery
    if mode not in DELIVERY_POLICIES:
        mode = config.delivery  # reported once at worker start
    declared = getattr(task, "max_deliveries", None)
    return Policy(mode, declared if _is_count(declared) else config.max_deliveries)


def _is_count(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a usable ``max_deliveries``: an integer >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_declarations(tasks: Any) -> list[str]:
    """One line per task whose declared policy cannot be used, naming the fix."""
    problems = []
    for name, task in sorted(tasks.items()):
        mode = getattr(task, "delivery", None)
        if mode is not None and mode not in DELIVERY_POLICIES:
            problems.append(
                f"task {name} declares delivery={mode!r}, which is no delivery policy; it gets the worker's "
                f"default (use {' or '.join(repr(p) for p in DELIVERY_POLICIES)})"
            )
        declared = getattr(task, "max_deliveries", None)
        if declared is not None and not _is_count(declared):
            problems.append(
                f"task {name} declares max_deliveries={declared!r}; it gets the worker's default (use an integer >= 1)"
            )
    return problems


def contradictions(app: Any) -> list[str]:
    """One line per setting that works against the delivery policy, naming the fix."""
    conf = app.conf
    late = sorted(name for name, task in app.tasks.items() if getattr(task, "acks_late", False))
    if not late:
        return []
    names = ", ".join(late[:5]) + (f" and {len(late) - 5} more" if len(late) > 5 else "")
    lines = [
        f"tasks {names} acknowledge late (acks_late): their message stays unacknowledged while they run, so "
        "a run longer than RabbitMQ's consumer_timeout (30 min by default) loses its channel and one longer "
        "than Redis's visibility_timeout runs twice; girder-worker's delivery policy already delivers a lost "
        "task again: drop acks_late and declare delivery='at-least-once'"
    ]
    if not conf.task_reject_on_worker_lost and not all(
        getattr(app.tasks[n], "reject_on_worker_lost", False) for n in late
    ):
        lines.append(
            f"tasks {names} acknowledge late without task_reject_on_worker_lost: Celery would acknowledge the "
            "message of a run lost with its pool process; the delivery policy decides instead"
        )
    transport = str(conf.broker_url or "").partition("://")[0]
    if transport in ("redis", "rediss"):
        visibility = float((conf.broker_transport_options or {}).get("visibility_timeout", 3600))
        for name in late:
            limit = getattr(app.tasks[name], "time_limit", None) or conf.task_time_limit
            if limit is None or limit > visibility:
                allowed = "no time limit" if limit is None else f"a time limit of {limit:g} s"
                lines.append(
                    f"task {name} acknowledges late and has {allowed}, more than the Redis broker's "
                    f"visibility_timeout ({visibility:g} s): a longer run is delivered twice; drop acks_late"
                )
    return lines


def message_of(request: Any) -> dict[str, Any]:
    """What it takes to publish ``request``'s message again, as JSON-able data."""
    message = request_message(request)
    body = message.body
    if isinstance(body, bytes):
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        text, encoded = str(body), False
    properties = message.properties or {}
    delivery_info = message.delivery_info or {}
    return {
        "body": text,
        "base64": encoded,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "headers": dict(message.headers or {}),
        "properties": {k: properties[k] for k in ("correlation_id", "reply_to", "priority") if properties.get(k)},
        "exchange": delivery_info.get("exchange") or "",
        "routing_key": delivery_info.get("routing_key") or request.task.queue or "",
    }


def _lost_reason(count: int, policy: Policy) -> str:
    times = "once" if count == 1 else f"{count} times"
    return f"worker lost {times} ({policy})"


def verdict(claim: Claim, policy: Policy, name: str, task_id: str) -> DuplicateRun | TaskLost | None:
    """What becomes of a run whose lease claim found ``claim``: None when it runs, else the
    exception it ends with before it begins; logged here, but for a duplicate's drop."""
    if claim.duplicate_of is not None:
        if claim.duplicate_of == DONE:
            return DuplicateRun("after it finished")
        return DuplicateRun(f"while worker {claim.holder.partition('/')[0]} runs it")
    if claim.deliveries > policy.limit:
        # A message redelivered by the broker after an earlier run was lost.
        reason = _lost_reason(claim.deliveries - 1, policy)
        logger.error("task %s[%s] was lost with its worker before: %s; it is not run again", name, task_id, reason)
        return TaskLost(reason)
    if claim.previous == REUSED:
        logger.warning(
            "task %s[%s] reuses the id of a task that finished, with other arguments: it runs as a new task, "
            "and its result replaces the old one (give each call its own id)",
            name,
            task_id,
        )
    if claim.previous == RUNNING:
        logger.warning(
            "task %s[%s] was delivered again after its worker %s was lost: delivery %d of %d",
            name,
            task_id,
            claim.holder.partition("/")[0],
            claim.deliveries,
            policy.limit,
        )
    return None


class Delivery:
    """One worker's side of the policy: claims, releases, heartbeat, takeovers."""

    def __init__(self, app: Any, hostname: str, store: LeaseStore) -> None:
        self.app = app
        self.hostname = hostname
        #: Called with (task id, reason, outcome) when this worker fails a task of a lost worker.
        self.announce_failed: Any = None
        self.config: Config = app.girder_worker_config
        self.store = store
        self.holder = f"{hostname}/{uuid.uuid4().hex[:12]}"
        self.ttl = self.config.lease_seconds
        self.stopping = threading.Event()
        self._finished: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._failing = False
        self.thread: threading.Thread | None = None
        #: Whether runs claim their leases themselves (the backend skips a refused run's STARTED).
        self.claims_in_run = isinstance(app.backend, StartedGate)

    # -- the worker's main process, as tasks go to the pool --------------------
    def admit(self, request: Any) -> bool:
        """Claim ``request``'s lease, or hand the claim to its run; False if it must not run (handled here).

        A run of a girder-worker task (:class:`girder_worker_utils.Task`) with one of
        girder-worker's result backends claims its lease itself, in the process that
        runs it, together with its ``STARTED`` state (:mod:`._admission`): the worker's
        main process makes no round trip for it. Any other run's lease is claimed here.
        """
        if is_revoked(request.id):
            return True  # Celery reports it revoked; no run, no lease
        attempt = request_retries(request)
        policy = policy_for(request.task, self.config)
        if self.claims_in_run and isinstance(request.task, GirderWorkerTask):
            pass_to_run(
                request,
                LEASE_KEY,
                {
                    "holder": self.holder,
                    "attempt": attempt,
                    "policy": [policy.mode, policy.max_deliveries],
                    "message": message_of(request),
                },
            )
            with self._lock:
                self._attempts[request.id] = attempt
            return True
        try:
            claim = self.store.claim(request.id, self.holder, message_of(request), attempt)
        except Exception as exc:
            self._store_trouble("claim the lease of", request, exc)
            return True
        with self._lock:
            self._attempts[request.id] = attempt
        refusal = verdict(claim, policy, request.name, request.id)
        if isinstance(refusal, DuplicateRun):
            self.duplicate_dropped(request, refusal.where)
            request.acknowledge()
            task_ready(request)
            return False
        if isinstance(refusal, TaskLost):
            self.lost_before(request, refusal)
            request.acknowledge()
            self.finished(request.id)
            request.on_failure(_einfo(refusal), return_ok=False)
            return False
        return True

    def duplicate_dropped(self, request: Any, where: str) -> None:
        """``request`` was a duplicate, dropped before it ran: say so; its lease is another run's."""
        logger.warning("task %s[%s] was delivered again %s; the duplicate was dropped", request.name, request.id, where)
        _metrics.duplicate_dropped(request.name)
        with self._lock:
            self._attempts.pop(request.id, None)

    def lost_before(self, request: Any, refusal: TaskLost) -> None:
        """``request`` was refused, its earlier runs lost up to its delivery limit."""
        _moments.lost(self.hostname, request.id, request.name, refusal.reason, delivered_again=False)

    def finished(self, task_id: str) -> None:
        """The run of ``task_id`` ended here: release its lease (batched)."""
        with self._lock:
            attempt = self._attempts.pop(task_id, None)
            if attempt is not None:
                self._finished.append((task_id, attempt))

    def pool_process_lost(self, request: Any, reason: str) -> ExceptionInfo | None:
        """A pool process died running ``request``: deliver it again, or say why not.

        Returns None when it was delivered again, else the failure to record.
        """
        with self._lock:
            claimed = request.id in self._attempts
        lease = None
        if claimed:
            try:
                lease = self.store.take(request.id, self.holder, holder_alive=True)
            except Exception as exc:
                self._store_trouble("take over the lease of", request, exc)
        if lease is None:
            return _einfo(TaskLost(f"worker lost ({reason})"))
        policy = policy_for(request.task, self.config)
        failure = self._apply(lease.task_id, lease.deliveries, lease.message, policy, f"its pool process {reason}")
        if failure is None:
            with self._lock:
                self._attempts.pop(request.id, None)
            return None
        return _einfo(TaskLost(failure))

    # -- the heartbeat thread ------------------------------------------------------
    def start(self) -> None:
        try:
            self.store.heartbeat(self.holder, self.ttl)
        except Exception as exc:  # the worker starts all the same; the thread keeps trying
            self._unreachable(exc)
        self.thread = threading.Thread(target=self._run, name="girder-worker-leases", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        try:
            self._flush()
        except Exception as exc:
            logger.warning("could not release the leases of this worker's last tasks: %s", exc)
        try:
            self.store.retire(self.holder)
        except Exception as exc:
            logger.warning("could not retire this worker's heartbeat: %s", exc)

    def _run(self) -> None:
        beat = self.ttl / 3
        next_beat = next_reap = next_sweep = 0.0
        clock = 0.0
        while not self.stopping.wait(0.2):
            clock += 0.2
            if clock >= next_sweep:
                self.sweep_expired()
                next_sweep = clock + SWEEP_INTERVAL_SECONDS
            try:
                self._flush()
                if clock >= next_beat:
                    self.store.heartbeat(self.holder, self.ttl)
                    next_beat = clock + beat
                if clock >= next_reap:
                    self.reap()
                    next_reap = clock + self.ttl / 2
                if self._failing:
                    logger.info("the lease store answers again")
                    self._failing = False
            except Exception as exc:
                self._unreachable(exc)

    def _unreachable(self, exc: Exception) -> None:
        """The lease store failed: say so once, until it answers again."""
        if not self._failing:
            logger.error(
                "cannot reach the lease store (%s); retrying; tasks of workers lost meanwhile wait until it answers",
                exc,
            )
        self._failing = True

    def sweep_expired(self) -> None:
        """Remove the embedded backend's expired results, cancellations and leases
        (see :mod:`._housekeeping`); nothing with another backend."""
        data_dir = self.config.data_dir
        if data_dir is None:
            return
        leases = self.store if isinstance(self.store, SqliteLeaseStore) else None
        try:
            sweep(data_dir, result_expiry(self.app.conf.result_expires), time.time(), leases)
        except Exception as exc:  # housekeeping never stops the heartbeat
            logger.warning("embedded broker: the sweep of expired files failed: %s", exc)

    def _flush(self) -> None:
        with self._lock:
            runs, self._finished = self._finished, []
        if runs:
            self.store.release(runs, self.holder, DONE)

    def reap(self) -> int:
        """Take over the leases of lost workers and apply their tasks' policies."""
        from ..girder import _signals as _girder_signals

        count = 0
        for task_id, holder in self.store.orphans():
            lease = self.store.take(task_id, holder)
            if lease is None:
                continue  # another worker was faster, or the holder came back
            count += 1
            headers = lease.message.get("headers") or {}
            policy = policy_for(self.app.tasks.get(str(headers.get("task", ""))), self.config)
            how = f"its worker {holder.partition('/')[0]} stopped answering"
            failure = self._apply(task_id, lease.deliveries, lease.message, policy, how)
            if failure is None:
                continue
            outcome = of_lost(failure)
            store_state(self.app.backend, task_id, outcome, TaskLost(failure))
            if self.announce_failed is not None:
                self.announce_failed(task_id, failure, outcome)
            self.store.release([(task_id, int(headers.get("retries") or 0))], holder, DONE)
            _girder_signals.end_job_of(headers, self.app, outcome)
        return count

    # -- applying the policy ------------------------------------------------------
    def _apply(self, task_id: str, deliveries: int, message: dict[str, Any], policy: Policy, how: str) -> str | None:
        """Deliver the task again (returns None) or fail it (returns the reason)."""
        from ..girder import _signals as _girder_signals

        headers = message.get("headers") or {}
        name = headers.get("task", "?")
        if deliveries < policy.limit and message.get("body") is not None:
            try:
                self._publish(message)
            except Exception as exc:
                logger.error("task %s[%s] was lost (%s) and could not be delivered again: %s", name, task_id, how, exc)
            else:
                logger.warning(
                    "task %s[%s] was lost (%s); delivered again (delivery %d of %d)",
                    name,
                    task_id,
                    how,
                    deliveries + 1,
                    policy.limit,
                )
                _moments.lost(self.hostname, task_id, str(name), how, delivered_again=True)
                _girder_signals.note_on_job(
                    headers,
                    self.app,
                    f"girder-worker: the worker running this job was lost ({how}); it was delivered again "
                    f"(delivery {deliveries + 1} of {policy.limit})",
                )
                return None
        reason = _lost_reason(deliveries, policy)
        logger.error("task %s[%s] was lost (%s): %s; it failed", name, task_id, how, reason)
        _moments.lost(self.hostname, task_id, str(name), reason, delivered_again=False)
        return reason

    def _publish(self, message: dict[str, Any]) -> None:
        body: Any = message["body"]
        if message.get("base64"):
            body = base64.b64decode(body)
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                body,
                exchange=message.get("exchange") or "",
                routing_key=message.get("routing_key") or "",
                headers=message.get("headers") or {},
                content_type=message.get("content_type"),
                content_encoding=message.get("content_encoding"),
                retry=True,
                **(message.get("properties") or {}),
            )

    def _store_trouble(self, doing: str, request: Any, exc: Exception) -> None:
        if self._failing:
            return  # said once; the heartbeat thread says when the store answers again
        self._failing = True
        logger.error(
            "could not %s task %s[%s] (%s); it runs without crash protection", doing, request.name, request.id, exc
        )


def watch_run(delivery: Delivery, request: Any) -> bool:
    """Claim ``request``'s lease and follow its run to the end; False if it must not run.

    Celery's request calls ``self.on_success`` and ``self.on_failure`` when the
    run ends; the wrappers set on the instance release the lease, and turn a lost
    pool process into a new delivery or a :class:`TaskLost` failure.
    """
    if not delivery.admit(request):
        return False
    on_success, on_failure = request.on_success, request.on_failure

    def released_on_success(result: Any, **kwargs: Any) -> Any:
        try:
            return on_success(result, **kwargs)
        finally:
            delivery.finished(request.id)

    def lost_or_failed(exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = exc_info.exception
        exc = getattr(exc, "exc", exc)  # Celery's ExceptionWithTraceback
        if isinstance(exc, DuplicateRun):  # refused by its run's admission (Celery acknowledges an Ignore)
            delivery.duplicate_dropped(request, exc.where)
            return on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        if isinstance(exc, TaskLost):  # refused by its run's admission: lost up to its delivery limit
            delivery.lost_before(request, exc)
        elif _is_loss(request, exc):
            exc_info = delivery.pool_process_lost(request, _how(exc))
            if exc_info is None:  # delivered again
                request.acknowledge()  # the original message, if the task acknowledges late
                task_ready(request)
                return None
            return_ok = False
        try:
            return on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        finally:
            delivery.finished(request.id)

    replace_request_callbacks(request, released_on_success, lost_or_failed)
    return True


def _is_loss(request: Any, exc: BaseException) -> bool:
    if terminated_on_purpose(request):
        return False
    return isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt))


def _how(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"exited with code {exc.code}"
    detail = worker_lost_detail(exc)
    return "died" + (f" ({detail})" if detail else "")


def _einfo(exc: BaseException) -> ExceptionInfo:
    try:
        raise exc
    except BaseException:
        info = ExceptionInfo()
    # As it arrives from a pool process: billiard wraps it in ExceptionWithTraceback,
    # which the task-failed event would show instead of the TaskLost.
    info.exception = exc
    return info


class DeliveryStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: the lease store, the heartbeat thread, the checks at start."""

    label = "girder-worker delivery"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        worker.delivery = None
        self.delivery: Delivery | None = None

    def create(self, worker: Any) -> None:
        app = worker.app
        for line in check_declarations(app.tasks):
            logger.error(line)
        for line in contradictions(app):
            logger.warning(line)
        store = lease_store_for(app)
        if store is None:
            logger.warning(
                "tasks lost with their worker are neither delivered again nor failed with the result backend %s; "
                "set GIRDER_WORKER_BACKEND to redis://... for the delivery policy to apply",
                app.backend.as_uri(),
            )
            return
        self.delivery = worker.delivery = Delivery(app, worker.hostname, store)
        from ..monitoring._task_events import announce_lost

        self.delivery.announce_failed = functools.partial(announce_lost, worker)

    def start(self, worker: Any) -> None:
        if self.delivery is not None:
            self.delivery.start()

    def stop(self, worker: Any) -> None:
        if self.delivery is not None:
            self.delivery.stop()

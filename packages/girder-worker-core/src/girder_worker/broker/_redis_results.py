"""Celery's Redis result backend, storing a task's state in one round trip instead of two.

Celery's key-value backends read a task's stored state before they write a new
one (``GET``), so that nothing replaces a SUCCESS that is already there (a lost
worker's late FAILURE, a duplicate's STARTED), then write and announce it
(``SETEX`` + ``PUBLISH``, in a second round trip). A girder-worker task stores at
least two states (STARTED, then its outcome), so that was four round trips to
Redis per task, on the pool process's path.

Here the read, the check and the write are one Lua script, run where the data
is: the same rule (a stored SUCCESS is never replaced), the same key, value,
expiry and announcement as Celery's, in one round trip. A client's
``AsyncResult`` sees no difference, and a plain Celery client or worker on the
same Redis reads and writes the same records.

The script reads the stored state with Redis's JSON decoder, so it serves the
JSON result serializer (girder-worker's); with another serializer, or a stored
value the decoder cannot read, the write goes Celery's own way.

The app's loader maps the ``redis://`` and ``rediss://`` result backend schemes
to :class:`ResultBackend` (Celery's ``override_backends``); ``sentinel://`` and
others keep Celery's classes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str

from .._celery_internals import encoded_result_meta, redis_value_limit
from ..delivery._gate import StartedGate
from ._redis_lua import STORE_UNLESS_SUCCEEDED_FUNCTION

__all__ = ["ResultBackend"]

# KEYS: the task's result key. ARGV: the encoded meta, its lifetime in seconds (0: none).
_STORE_UNLESS_SUCCEEDED = STORE_UNLESS_SUCCEEDED_FUNCTION + "return store_unless_succeeded(KEYS[1], ARGV[1], ARGV[2])\n"


class ResultBackend(StartedGate, RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend; a state is read, checked and stored in one round trip.

    A run's ``STARTED`` is stored with its lease claim, in the same round trip (see
    :meth:`started_record` and :mod:`girder_worker.delivery._gate`).
    """

    # functools' (not kombu's, which takes a lock at every read): read at every state stored.
    @cached_property
    def _store_script(self) -> Any:
        return self.client.register_script(_STORE_UNLESS_SUCCEEDED)

    def _store_result(  # Celery's per-state store hook (key-value backends): see encoded_result_meta
        self, task_id: Any, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        if self.serializer != "json":
            return super()._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        value = encoded_result_meta(self, task_id, result, state, traceback, request, extended=self._extended)
        if isinstance(value, str) and len(value) > redis_value_limit(self):
            raise BackendStoreError("value too large for Redis backend", state=state, task_id=task_id)
        # result_failure_expires is Celery 5.7's (RedisBackend.failure_expires); before it, one lifetime.
        expires = getattr(self, "failure_expires", self.expires) if state == states.FAILURE else self.expires
        stored = self.ensure(self._store_unless_succeeded, (self.get_key_for_task(task_id), value, expires))
        if stored == -1:  # a stored value the script cannot read: Celery's own way
            return super()._store_result(task_id, result, state, traceback=traceback, request=request, **kwargs)
        return result

    def started_record(self, task_id: str, request: Any) -> tuple[str, str, int] | None:
        """The key, value and lifetime of the ``STARTED`` state Celery's tracer would store for
        ``request``'s run in this process, or None when it must be stored Celery's way."""
        value = self.started_meta(task_id, request)
        if value is None or len(value) > redis_value_limit(self):
            return None
        return bytes_to_str(self.get_key_for_task(task_id)), value, int(self.expires or 0)

    def _store_unless_succeeded(self, key: Any, value: Any, expires: Any) -> int:
        return int(self._store_script(keys=[key], args=[value, int(expires or 0)]))

"""Every private Celery name girder_worker_utils relies on.

This is the only module of ``girder_worker_utils`` that touches them (utils cannot
import core, whose own adapter is ``girder_worker._celery_internals``). Each function
says what it relies on, which releases it was checked on (Celery 5.4 to 5.7) and
which contract test in ``tests/compat/test_contracts.py`` fails loudly when a release
changes it; ``tests/test_quality.py`` fails when a private name shows up elsewhere.

The task stack is read on every call of a task from inside another (a recursive
task is a plain function call), so these functions are one read each and nothing
more.

When a release changes one of these points: run ``hatch run compat:test``. The
failing contract test names the attribute, the releases installed and the function
here that relies on it; change that function, keeping its signature.
"""

from __future__ import annotations

from typing import Any

from celery._state import _task_stack, get_current_app
from celery.worker import state as _worker_state

__all__ = ["app_in_use", "is_revoked", "running_app", "running_task"]


def running_task() -> Any:
    """The task running in this thread, or None.

    Relies on ``celery._state._task_stack.top`` (Celery 5.4-5.7).
    Contract test: ``test_task_stack``.
    """
    return _task_stack.top


def running_app() -> Any:
    """The app of the task running in this thread, or None when no task runs.

    Relies on ``celery._state._task_stack.top`` and ``Task._app``, the app a task
    class is bound to, read without ``Task.app``'s binding on first use (Celery 5.4-5.7).
    Contract test: ``test_task_stack``.
    """
    top = _task_stack.top
    return top._app if top is not None else None


def app_in_use() -> Any:
    """The app of the task running in this thread, else the current app (Celery's default if none was set).

    Relies on ``celery._state._task_stack.top``, ``Task._app`` and
    ``celery._state.get_current_app`` (Celery 5.4-5.7).
    Contract test: ``test_task_stack``.
    """
    top = _task_stack.top
    return top._app if top is not None else get_current_app()


def is_revoked(task_id: str) -> bool:
    """Whether this worker has ``task_id`` among its revoked ids.

    Relies on ``celery.worker.state.revoked``, read at each call (Celery 5.4-5.7).
    Contract test: ``test_worker_state_collections``.
    """
    return task_id in _worker_state.revoked

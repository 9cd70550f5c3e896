"""Declare a plugin's tasks without depending on a particular Celery app."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, overload

import celery

from ._celery_internals import app_in_use, running_app
from ._task import Task

__all__ = ["task"]


class PluginTask:
    """Stands for one task function in whichever Celery app is using it.

    The worker's app and a client's app each register the function as a task when
    they finalize; calling, ``delay`` and every other attribute go to the task of the
    app that is running the caller (the executing task's app inside a worker, the
    current app elsewhere). The lookup is cached per app, so a recursive call costs
    little more than a plain function call.
    """

    def __init__(self, fun: Callable[..., Any], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._explicit_name: str | None = options.get("name")
        self._app: Any = None
        self._task: Any = None
        self._run: Any = None

    def _resolve(self) -> Any:
        app = app_in_use()
        if app is not self._app:
            name = self._explicit_name or app.gen_task_name(self._fun.__name__, self._fun.__module__)
            self._task = app.tasks[name]
            self._run = self._task.run
            self._app = app
        return self._task

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        app = running_app()
        if app is not None and app is self._app:
            # Inside a running task of the same app: a plain call, as Task.__call__ does.
            return self._run(*args, **kwargs)
        return self._resolve()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)

    def __repr__(self) -> str:
        return f"<plugin task {self._explicit_name or self._fun.__qualname__}>"


@overload
def task(fun: Callable[..., Any], /) -> PluginTask: ...
@overload
def task(**options: Any) -> Callable[[Callable[..., Any]], PluginTask]: ...
def task(*args: Any, **options: Any) -> Any:
    """Declare a task that binds to whichever Celery app loads it.

    Use it like Celery's ``app.task``, with the same options, in a plugin that
    depends only on ``girder-worker-utils``::

        from girder_worker_utils import task

        @task
        def add(x, y):
            return x + y

        @task(bind=True)
        def wait(self, seconds):
            ...

    The task's class defaults to :class:`girder_worker_utils.Task`, so
    ``self.cancelled`` works in every app.
    """
    options.setdefault("base", Task)

    def decorate(fun: Callable[..., Any]) -> PluginTask:
        celery.shared_task(**options)(fun)
        return PluginTask(fun, options)

    if len(args) == 1 and callable(args[0]) and not options.keys() - {"base"}:
        return decorate(args[0])
    if args:
        raise TypeError("task() takes the function alone, or options as keywords")
    return decorate

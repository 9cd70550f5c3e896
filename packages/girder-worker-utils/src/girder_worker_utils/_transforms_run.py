"""One run's transforms: arguments transformed before it, result hooks after it.

The protocol is the original girder-worker's (see :mod:`.transform`): every
argument with a callable ``transform`` (searched through lists, tuples and dicts)
is replaced by what it returns; ``girder_result_hooks`` get the return value, or
each value of a returned tuple by position; every argument's and hook's
``cleanup`` runs afterwards, whatever happened. A cleanup that fails is logged
and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .wire import restore

__all__ = ["TransformRun", "model_repr", "result_hooks", "walk"]

_log = logging.getLogger("girder_worker.task")


def walk(obj: Any, func: Callable[[Any], Any], leaf_condition: Callable[[Any], bool] | None = None) -> Any:
    """``obj`` rebuilt with ``func`` applied to each leaf (anything but a dict, list or
    tuple, or what ``leaf_condition`` calls a leaf). The original's ``_walk_obj``."""
    if leaf_condition is not None and leaf_condition(obj):
        return func(obj)
    if isinstance(obj, dict):
        return {key: walk(value, func, leaf_condition) for key, value in obj.items()}
    if isinstance(obj, list):
        return [walk(value, func, leaf_condition) for value in obj]
    if isinstance(obj, tuple):
        return tuple(walk(value, func, leaf_condition) for value in obj)
    return func(obj)


def model_repr(obj: Any) -> Any:
    """What a Girder job stores for one argument: ``_repr_model_()`` of a transform."""
    method = getattr(obj, "_repr_model_", None)
    return method() if callable(method) else obj


def _has_method(obj: Any, name: str) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, name, None))


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """Whether ``value`` certainly holds no transform (the common, cheap case)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(v, _PLAIN) for v in value)
    return False


class TransformRun:
    """The transforms of one run. ``hooks`` is the request's ``girder_result_hooks``
    as the message carried it (flattened) or as objects."""

    __slots__ = ("hooks", "used")

    def __init__(self, hooks: Any = None) -> None:
        self.used: list[Any] = []
        self.hooks: list[Any] = [_restore_hook(h) for h in hooks] if isinstance(hooks, list | tuple) else []

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``args`` and ``kwargs`` with every transform replaced by its value."""
        if all(map(_plain, args)) and all(map(_plain, kwargs.values())):
            return args, kwargs
        return tuple(walk(args, self._transform)), walk(kwargs, self._transform)

    def _transform(self, obj: Any) -> Any:
        if _has_method(obj, "transform"):
            self.used.append(obj)
            return obj.transform()
        return obj

    def result(self, value: Any) -> Any:
        """The return value passed through the result hooks."""
        if not self.hooks:
            return value
        if isinstance(value, tuple):
            return tuple(self._hook(i, v) for i, v in enumerate(value))
        return self._hook(0, value)

    def _hook(self, index: int, value: Any) -> Any:
        if index < len(self.hooks) and _has_method(self.hooks[index], "transform"):
            return self.hooks[index].transform(value)
        return value

    def failed(self) -> None:
        """Tell each result hook that the run failed."""
        for hook in self.hooks:
            if _has_method(hook, "exception"):
                _quietly(hook.exception, hook, "exception")

    def cleanup(self) -> None:
        """Every transformed argument's and hook's ``cleanup()``."""
        for obj in (*self.used, *self.hooks):
            if _has_method(obj, "cleanup"):
                _quietly(obj.cleanup, obj, "cleanup")


def result_hooks(request: Any) -> Any:
    """The ``girder_result_hooks`` of a task's ``request``, as the message carried them.

    A worker's request has the message's headers as attributes; ``apply()`` and eager
    runs keep them in ``request.headers``.
    """
    hooks = getattr(request, "girder_result_hooks", None)
    if hooks is None:
        headers = getattr(request, "headers", None)
        if isinstance(headers, dict):
            hooks = headers.get("girder_result_hooks")
    return hooks


def _restore_hook(hook: Any) -> Any:
    return restore(hook) if isinstance(hook, dict) else hook


def _quietly(call: Callable[[], Any], obj: Any, what: str) -> None:
    try:
        call()
    except Exception:
        _log.exception("%s.%s() failed; the run's outcome stands", type(obj).__name__, what)

"""Celery settings by name, in either case, with a warning for unknown names.

Celery reads lower-case setting names (``task_time_limit``) and the old upper-case
ones (``CELERYD_TASK_TIME_LIMIT``), and silently stores any other key. The plugin
guide's ``app.config.update({'TASK_TIME_LIMIT': 300})`` would set nothing. Here
an upper-case name whose lower case is a setting means that setting, and an
upper-case name that matches no setting is stored as given with a warning that
names it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from celery.app.defaults import SETTING_KEYS
from celery.app.utils import Settings

from ._celery_internals import new_setting_name
from ._hints import closest

__all__ = ["GirderWorkerSettings", "UnknownSettingWarning", "normalize_key"]


class UnknownSettingWarning(UserWarning):
    """An upper-case configuration key that is not a Celery setting."""


def normalize_key(key: Any, depth: int = 1) -> Any:
    """Return the Celery setting that ``key`` names, warning if it names none.

    ``depth`` is how many frames above the caller the warning should point at.
    """
    if not isinstance(key, str) or key in SETTING_KEYS:
        return key
    new = new_setting_name(key)
    if new is not None:
        return new
    lower = key.lower()
    if lower in SETTING_KEYS:
        return lower
    if key.isupper():
        close = closest(lower, SETTING_KEYS)
        hint = f"did you mean {close!r}?" if close else "see Celery's configuration reference"
        warnings.warn(
            f"configuration key {key!r} is not a Celery setting, so Celery ignores it; {hint}",
            UnknownSettingWarning,
            stacklevel=1 + depth,
        )
    return key


class GirderWorkerSettings(Settings):  # type: ignore[misc]
    """Celery's settings object, taking setting names in either case."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(normalize_key(key, depth=2), value)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return super().setdefault(normalize_key(key, depth=2), default)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        items: list[tuple[Any, Any]] = []
        if args:
            other = args[0]
            items.extend(other.items() if isinstance(other, Mapping) else other)
        items.extend(kwargs.items())
        changes = {}
        for key, value in items:
            changes[normalize_key(key, depth=2)] = value
        return super().update(changes)

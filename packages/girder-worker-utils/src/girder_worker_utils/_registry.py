"""The classes a message may name: transforms, registered as they are defined.

A message from the original girder-worker names each transform argument by its
import path (``{"py/object": "girder_worker.utils.transforms.girder_io.GirderFileId",
...}``). The decoder (:mod:`.wire`) accepts a name only when it is registered
here: every :class:`~girder_worker_utils.transform.Transform` subclass registers
itself when its module is imported, under its own import path and under the
original's path of the same class. Nothing is imported because a message names
it, except girder-worker's own transform modules listed in :data:`OWN_MODULES`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["OWN_MODULES", "lookup", "register_transform", "wire_name"]

#: The original's import paths of the transform modules, and where they live here.
#: Names under the first are accepted and sent as they are, so an original worker
#: can read what our clients publish.
_ALIASES = (
    ("girder_worker.utils.transforms.", "girder_worker_utils.transforms."),
    ("girder_worker.utils.transform.", "girder_worker_utils.transform."),
    ("girder_worker_utils.transforms.", "girder_worker_utils.transforms."),
    ("girder_worker_utils.transform.", "girder_worker_utils.transform."),
)

#: girder-worker's own modules that define transforms; a message may name a class
#: in one before the worker imported it (they import nothing else of note).
OWN_MODULES = frozenset(
    {
        "girder_worker_utils.transforms.common",
        "girder_worker_utils.transforms.girder_io",
        "girder_worker_utils.transforms.contrib.girder_io",
        "girder_worker.docker.transforms",
        "girder_worker.docker.transforms.girder",
    }
)

_classes: dict[str, type] = {}


def _names(cls: type) -> list[str]:
    own = f"{cls.__module__}.{cls.__qualname__}"
    names = [own]
    for original, here in _ALIASES:
        if own.startswith(here):
            names.append(original + own[len(here) :])
    return names


def register_transform(cls: type, *names: str) -> type:
    """Let messages name ``cls`` (by its import path, and by ``names`` too).

    Subclasses of :class:`~girder_worker_utils.transform.Transform` are registered
    when they are defined; call it for a transform class that is not one. It
    returns ``cls``, so it works as a class decorator.
    """
    for name in (*_names(cls), *names):
        _classes[name] = cls
    return cls


def wire_name(cls: type) -> str:
    """The name a message gives ``cls``: the original's path where the original has it."""
    own = f"{cls.__module__}.{cls.__qualname__}"
    if own.startswith("girder_worker_utils.transform"):
        return "girder_worker.utils." + own[len("girder_worker_utils.") :]
    return own


def lookup(name: str) -> type | None:
    """The registered class ``name`` stands for, or None."""
    cls = _classes.get(name)
    if cls is not None:
        return cls
    module = name.rpartition(".")[0]
    for original, here in _ALIASES:
        if module.startswith(original.rstrip(".")):
            module = here.rstrip(".") + module[len(original.rstrip(".")) :]
            break
    if module in OWN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # girder_worker.docker without the docker extra, say
            return None
        return _classes.get(name)
    return None


def registered() -> dict[str, Any]:
    """A copy of the registry (for tests and ``girder-worker plugins``)."""
    return dict(_classes)

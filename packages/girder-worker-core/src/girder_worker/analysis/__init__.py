"""Analyses with typed inputs and automatic format conversion: the built-in tasks'
engine.

``girder_worker.run``, ``girder_worker.convert`` and ``girder_worker.validators``
(in :mod:`girder_worker.analysis.tasks`) run on what is registered here: types and
their formats, each with a validator; converters between the formats of a type;
modes that execute a task spec; and bindings that fetch inputs and push outputs.
A plugin extends :data:`registry` from its plugin class, or from a function
``register(registry)`` in the ``girder_worker_analysis`` entry point group::

    from girder_worker.analysis import convert

    convert("table", {"format": "csv", "data": "a,b\\n1,2\\n"}, {"format": "rows"})
    # {'format': 'rows', 'data': {'fields': ['a', 'b'], 'rows': [{'a': 1, 'b': 2}]}}
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from ._errors import (
    AnalysisError,
    BindingNotAllowed,
    ConversionError,
    InvalidData,
    InvalidSpec,
    MissingInput,
    ModeNotAllowed,
    NoConversionPath,
    UnknownBinding,
    UnknownFormat,
    UnknownMode,
)
from ._limits import ALLOW_PYTHON_MODE

#: The entry point group of analysis extensions: functions ``register(registry)``.
ENTRY_POINT_GROUP = "girder_worker_analysis"

if TYPE_CHECKING:
    from ._context import BindingContext, RunContext
    from ._engine import convert, run, run_analysis
    from ._registry import Converter, Format, Mode, Registry

__all__ = [
    "ALLOW_PYTHON_MODE",
    "ENTRY_POINT_GROUP",
    "AnalysisError",
    "BindingContext",
    "BindingNotAllowed",
    "ConversionError",
    "Converter",
    "Format",
    "InvalidData",
    "InvalidSpec",
    "MissingInput",
    "Mode",
    "ModeNotAllowed",
    "NoConversionPath",
    "Registry",
    "RunContext",
    "UnknownBinding",
    "UnknownFormat",
    "UnknownMode",
    "convert",
    "new_registry",
    "registry",
    "run",
    "run_analysis",
    "validators",
]


#: Where each name of this package is defined, imported when it is first used: a
#: worker that runs no analysis does not load the engine, formats and registry (12 ms
#: and 15 modules of every worker's start; each prefork process loads its own on its
#: first analysis). The errors and ``ALLOW_PYTHON_MODE`` are light and imported above.
_LAZY = {
    "BindingContext": "._context",
    "RunContext": "._context",
    "convert": "._engine",
    "run": "._engine",
    "run_analysis": "._engine",
    "Converter": "._registry",
    "Format": "._registry",
    "Mode": "._registry",
    "Registry": "._registry",
}
_registry_lock = threading.Lock()


def new_registry(*, load_entry_points: bool = False) -> Registry:
    """A registry holding the built-in types, formats, converters, modes and bindings."""
    from . import _bindings, _formats_scalar, _formats_table, _formats_tree, _girder_io, _modes
    from ._registry import Registry

    fresh = Registry(load_entry_points=load_entry_points)
    for module in (_formats_scalar, _formats_table, _formats_tree, _bindings, _girder_io, _modes):
        module.register(fresh)
    return fresh


def _default_registry() -> Registry:
    """:data:`registry`, built on first use (once, whichever thread asks first)."""
    found = globals().get("registry")
    if found is None:
        with _registry_lock:
            found = globals().get("registry")
            if found is None:
                found = globals()["registry"] = new_registry(load_entry_points=True)
    return found


def __getattr__(name: str) -> Any:
    if name == "registry":
        return _default_registry()
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def validators(type: str | None = None, format: str | None = None) -> list[dict[str, Any]]:
    """The registered formats matching ``type`` and ``format`` (None matches any)."""
    return _default_registry().validators(type, format)


if TYPE_CHECKING:
    #: The registry the built-in tasks use: the built-ins, what plugins add, and the
    #: ``girder_worker_analysis`` entry points (run on first use).
    registry: Registry

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

from typing import Any

from . import _bindings, _formats_scalar, _formats_table, _formats_tree, _girder_io, _modes
from ._context import BindingContext, RunContext
from ._engine import convert, run, run_analysis
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
from ._modes import ALLOW_PYTHON_MODE
from ._registry import ENTRY_POINT_GROUP, Converter, Format, Mode, Registry

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


def new_registry(*, load_entry_points: bool = False) -> Registry:
    """A registry holding the built-in types, formats, converters, modes and bindings."""
    fresh = Registry(load_entry_points=load_entry_points)
    for module in (_formats_scalar, _formats_table, _formats_tree, _bindings, _girder_io, _modes):
        module.register(fresh)
    return fresh


#: The registry the built-in tasks use: the built-ins, what plugins add, and the
#: ``girder_worker_analysis`` entry points (run on first use).
registry: Registry = new_registry(load_entry_points=True)


def validators(type: str | None = None, format: str | None = None) -> list[dict[str, Any]]:
    """The registered formats matching ``type`` and ``format`` (None matches any)."""
    return registry.validators(type, format)

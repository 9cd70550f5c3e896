"""The errors an analysis can end with, each with a message a user can act on.

Every class takes its message as its only positional argument, so Celery can
rebuild it from a JSON result on the client's side.
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "BindingNotAllowed",
    "ConversionError",
    "InvalidData",
    "InvalidSpec",
    "MissingInput",
    "ModeNotAllowed",
    "NoConversionPath",
    "UnknownBinding",
    "UnknownFormat",
    "UnknownMode",
]


class AnalysisError(Exception):
    """Something about an analysis, its inputs or its outputs that the caller can fix."""


class InvalidSpec(AnalysisError):
    """The task spec itself is malformed: a port without a name, a workflow cycle, ..."""


class UnknownFormat(AnalysisError):
    """A type or a type/format pair that no registered validator covers."""


class InvalidData(AnalysisError):
    """Data that is not of the type and format it is declared to be."""


class MissingInput(AnalysisError):
    """A required input has neither a binding nor a default."""


class NoConversionPath(AnalysisError):
    """No chain of converters leads from one format of a type to another."""


class ConversionError(AnalysisError):
    """A converter failed on data that its input validator accepted (or was not asked to check)."""


class UnknownMode(AnalysisError):
    """A task spec names a mode that no built-in or plugin provides."""


class UnknownBinding(AnalysisError):
    """An input or output binding names a binding mode that nothing handles."""


class ModeNotAllowed(AnalysisError):
    """The mode exists, but this worker's configuration does not allow it."""


class BindingNotAllowed(AnalysisError):
    """A binding reaches what this worker's configuration does not allow: a local
    path outside ``GIRDER_WORKER_LOCAL_PATHS``, an http host outside
    ``GIRDER_WORKER_HTTP_ALLOWED_HOSTS``, a method its direction does not need."""

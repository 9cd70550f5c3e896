"""The transform protocol: arguments that become something else when the task runs.

An argument of a task that is a :class:`Transform` is replaced, just before the
task runs, by what its :meth:`~Transform.transform` returns (a Girder file id
becomes a local path, say), and its :meth:`~Transform.cleanup` runs after the
task, whatever the outcome. A :class:`ResultTransform` passed in the
``girder_result_hooks`` option gets the task's return value instead (the Girder
item a result file is uploaded to, say), or :meth:`~ResultTransform.exception`
when the task failed. This is the original girder-worker's protocol, at its
import path::

    from girder_worker_utils.transform import Transform

    class Upper(Transform):
        def __init__(self, text):
            self.text = text

        def transform(self):
            return self.text.upper()

Every subclass is registered by its import name, so a worker that has imported
it can decode it from a message (see :mod:`girder_worker_utils.wire`); a worker
never imports a module a message names.
"""

from __future__ import annotations

import abc
from typing import Any

from ._registry import register_transform

__all__ = ["ResultTransform", "Transform"]


class Transform(metaclass=abc.ABCMeta):
    """An argument that is replaced by :meth:`transform` when the task runs."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_transform(cls)

    def _repr_model_(self) -> str:
        """A readable form of this argument, stored in the Girder job's args and kwargs."""
        return str(self)

    def cleanup(self) -> None:  # noqa: B027  (optional, like the original's)
        """Undo what :meth:`transform` made (temporary files, say), after the run."""

    @abc.abstractmethod
    def transform(self) -> Any:
        """What the task receives in place of this argument."""


class ResultTransform(Transform, metaclass=abc.ABCMeta):
    """A result hook: gets the task's return value (or one value of a tuple).

    :attr:`job` is the Girder job of the task, when one was created for it as it was
    published (inside Girder, or by a girder-worker client with a Girder token).
    """

    job: Any = None

    @abc.abstractmethod
    def transform(self, data: Any) -> Any:  # type: ignore[override]
        """What the result becomes (an uploaded file's item id, say)."""

    def exception(self) -> None:
        """Called instead of :meth:`transform` when the task failed."""

"""JSON on the wire that the original girder-worker reads and writes too.

kombu's ``json`` serializer, registered again (kombu's public
``kombu.serialization.register``) with two differences:

- decoding: JSON that holds jsonpickle tags (``"py/``, a substring test on the raw
  text, so plain JSON costs nothing more) is passed through
  :func:`girder_worker_utils.wire.restore`, the allow-list decoder. The original's
  messages say ``application/json`` whatever serializer wrote them (its
  ``girder_io`` serializer too), so this one decoder reads them all; a message
  naming anything else raises :class:`~girder_worker_utils.wire.RefusedObject`,
  which the worker's intake turns into one log line and a failed result.
- encoding: a body that holds transform objects is written in the original's
  format (:func:`girder_worker_utils.wire.flatten`), which original workers read;
  any other body is written exactly as kombu writes it.

``girder_io`` is registered as a second name for the same serializer, so code
written for the original (``apply_async(..., serializer='girder_io')``) works.
"""

from __future__ import annotations

from typing import Any

from kombu.serialization import register
from kombu.utils import json as kombu_json

from girder_worker_utils.wire import flatten, has_objects, restore

__all__ = ["install"]

CONTENT_TYPE = "application/json"


class _HasObjects(Exception):
    """Raised out of the C encoder at the first object it cannot write."""


class _Encoder(kombu_json.JSONEncoder):  # type: ignore[misc]
    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            raise _HasObjects from None


def dumps(value: Any) -> str:
    """``value`` as JSON: kombu's, or the original's format when it holds transforms."""
    try:
        return str(kombu_json.dumps(value, cls=_Encoder))
    except _HasObjects:
        return str(kombu_json.dumps(flatten(value)))


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """JSON ``data`` decoded, with the original's tags read by the allow-list."""
    if isinstance(data, memoryview | bytearray):
        data = bytes(data)
    value = kombu_json.loads(data)
    if has_objects(data):
        value = restore(value)
    return value


_installed = False


def install() -> None:
    """Register the serializer (once per process) as ``json`` and ``girder_io``."""
    global _installed
    if _installed:
        return
    register("json", dumps, loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
    register("girder_io", dumps, loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
    _installed = True

"""The original girder-worker's wire format, read by an allow-list and written back.

The original girder-worker publishes task messages whose JSON is shaped by
jsonpickle: tuples as ``{"py/tuple": [...]}``, a transform argument as
``{"py/object": "girder_worker.utils.transforms.girder_io.GirderFileId", "file_id":
..., "gc": {"py/object": "girder_client.GirderClient", "urlBase": ..., "token": ...}}``,
an object seen before as ``{"py/id": n}``. jsonpickle itself would construct
whatever such a message names (``os.system`` included); :func:`restore` builds
only:

- plain JSON values and tuples;
- instances of registered transform classes (every
  :class:`~girder_worker_utils.transform.Transform` subclass the worker has
  imported, and classes passed to :func:`register_transform`), made without
  running any constructor, from the state the message carries;
- ``girder_client.GirderClient``, rebuilt from its URL and token alone.

Anything else (another ``py/object``, ``py/reduce``, ``py/function``,
``py/type``, ``py/repr``, ...) raises :class:`RefusedObject` before anything is
imported or constructed::

    >>> restore({"py/tuple": [1, [2, 3]]})
    (1, [2, 3])
    >>> restore({"py/object": "os.system"})
    Traceback (most recent call last):
    ...
    girder_worker_utils.wire.RefusedObject: 'os.system' (py/object) is not a registered transform class

:func:`flatten` writes the same format, so an original worker can run what a
girder-worker client publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._registry import lookup, register_transform, wire_name

__all__ = ["RefusedObject", "flatten", "has_objects", "register_transform", "restore"]

_OBJECT, _TUPLE, _ID, _STATE, _TYPE = "py/object", "py/tuple", "py/id", "py/state", "py/type"
_GIRDER_CLIENT = "girder_client.GirderClient"
#: Deeper than any transform argument needs; a deeper message is refused, not recursed.
MAX_DEPTH = 64
#: The fields of a GirderClient that are used; the rest of its state is ignored.
_CLIENT_FIELDS = ("urlBase", "token")


class RefusedObject(ValueError):
    """A message names something the worker will not construct.

    ``name`` is what it names (a class, a function, a tag), ``tag`` the
    jsonpickle tag that named it.
    """

    def __init__(self, name: str, tag: str, why: str) -> None:
        super().__init__(f"{name[:200]!r} ({tag}) {why}")
        self.name = name[:200]
        self.tag = tag


def _tag_of(value: Mapping[str, Any]) -> str | None:
    for key in value:
        if isinstance(key, str) and key.startswith("py/"):
            return key
    return None


def _first_name(value: Any, depth: int = 0) -> str:
    """The first string in ``value`` (what a ``py/reduce`` or ``py/function`` names)."""
    if isinstance(value, str):
        return value
    if depth < 8:
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for item in items:
            name = _first_name(item, depth + 1)
            if name:
                return name
    return "" if depth else type(value).__name__


class _Restorer:
    """One message's (or one result hook's) references, numbered as jsonpickle does:
    every list, dict and object in the order it begins, tuples not counted."""

    def __init__(self, client_factory: Callable[[str, str | None], Any] | None) -> None:
        self.refs: list[Any] = []
        self.client_factory = client_factory

    def restore(self, value: Any, depth: int = 0, in_client: bool = False) -> Any:
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        if depth > MAX_DEPTH:
            raise RefusedObject("(nesting)", "depth", f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, list):
            out: list[Any] = []
            self.refs.append(out)
            out.extend(self.restore(v, depth + 1, in_client) for v in value)
            return out
        if not isinstance(value, dict):
            return value  # a value a decoder other than JSON made; nothing to construct
        tag = _tag_of(value) if value else None
        if tag is None:
            mapping: dict[Any, Any] = {}
            self.refs.append(mapping)
            for key, item in value.items():
                mapping[key] = self.restore(item, depth + 1, in_client)
            return mapping
        if tag == _TUPLE and len(value) == 1 and isinstance(value[_TUPLE], list):
            return tuple(self.restore(v, depth + 1, in_client) for v in value[_TUPLE])
        if tag == _ID and len(value) == 1:
            index = value[_ID]
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(self.refs):
                return self.refs[index]
            raise RefusedObject(str(index), _ID, "refers to no object before it")
        if tag == _TYPE and in_client and len(value) == 1:
            return None  # GirderClient's progressReporterCls: never resolved, never used
        if _OBJECT in value and isinstance(value[_OBJECT], str):
            return self._object(value, depth, in_client)
        raise RefusedObject(_first_name(value[tag]), tag, "is not something a girder-worker message may contain")

    def _object(self, value: dict[str, Any], depth: int, in_client: bool) -> Any:
        name = value[_OBJECT]
        extra = [k for k in value if isinstance(k, str) and k.startswith("py/") and k not in (_OBJECT, _STATE)]
        if extra:
            raise RefusedObject(name, extra[0], "is not something a girder-worker message may contain")
        if name == _GIRDER_CLIENT:
            return self._client(value, depth)
        cls = lookup(name)
        if cls is None:
            raise RefusedObject(name, _OBJECT, "is not a registered transform class")
        instance: Any = object.__new__(cls)  # no constructor of the class runs
        self.refs.append(instance)
        if _STATE in value:
            state = self.restore(value[_STATE], depth + 1, in_client)
        else:
            state = {k: self.restore(v, depth + 1, in_client) for k, v in value.items() if k != _OBJECT}
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise RefusedObject(name, _STATE, "has a state that is not an object of named fields")
        instance.__dict__.update(state)
        return instance

    def _client(self, value: dict[str, Any], depth: int) -> Any:
        index = len(self.refs)
        self.refs.append(None)
        for key, item in value.items():  # numbered as jsonpickle numbers them, then dropped
            if key not in (_OBJECT, *_CLIENT_FIELDS):
                self.restore(item, depth + 1, in_client=True)
        url, token = value.get("urlBase"), value.get("token")
        if not isinstance(url, str) or not isinstance(token, str | None):
            raise RefusedObject(_GIRDER_CLIENT, _OBJECT, "has no urlBase string")
        client = (self.client_factory or _girder_client)(url, token)
        self.refs[index] = client
        return client


def _girder_client(url: str, token: str | None) -> Any:
    from girder_client import GirderClient

    client: Any = GirderClient(apiUrl=url)
    client.token = token
    return client


def restore(value: Any, client_factory: Callable[[str, str | None], Any] | None = None) -> Any:
    """``value`` (decoded JSON) with the original's tags made into what they stand for.

    Raises :class:`RefusedObject` for anything but plain values, tuples, registered
    transforms and Girder clients. ``client_factory(url, token)`` makes the Girder
    clients (default: ``girder_client.GirderClient``).
    """
    return _Restorer(client_factory).restore(value)


def has_objects(text: str | bytes) -> bool:
    """Whether JSON ``text`` may hold jsonpickle tags (a substring test, no parse)."""
    return ('"py/' in text) if isinstance(text, str) else (b'"py/' in text)


class _Flattener:
    """Writes objects as jsonpickle does, with the same numbering of references."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps ids unique while flattening

    def flatten(self, value: Any) -> Any:
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        if isinstance(value, tuple):
            return {_TUPLE: [self.flatten(v) for v in value]}
        if isinstance(value, list):
            self.count += 1
            return [self.flatten(v) for v in value]
        if isinstance(value, dict):
            self.count += 1
            return {k if isinstance(k, str) else str(k): self.flatten(v) for k, v in value.items()}
        known = self.seen.get(id(value))
        if known is not None:
            return {_ID: known}
        self.seen[id(value)] = self.count
        self.keep.append(value)
        self.count += 1
        cls = type(value)
        if f"{cls.__module__}.{cls.__qualname__}" == _GIRDER_CLIENT:
            return self._client(value)
        if lookup(f"{cls.__module__}.{cls.__qualname__}") is not cls:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__} is not a registered transform class, so it cannot be "
                "sent in a task message (subclass girder_worker_utils.transform.Transform)"
            )
        state = {k: self.flatten(v) for k, v in vars(value).items()}
        return {_OBJECT: wire_name(cls), **state}

    def _client(self, client: Any) -> dict[str, Any]:
        state: dict[str, Any] = {_OBJECT: _GIRDER_CLIENT}
        for key, item in vars(client).items():
            if isinstance(item, type):
                state[key] = {_TYPE: f"{item.__module__}.{item.__qualname__}"}
            elif isinstance(item, str | int | float | bool | list | dict) or item is None:
                try:
                    state[key] = self.flatten(item)
                except TypeError:  # callbacks and the like: an original worker makes its own
                    state[key] = [] if isinstance(item, list) else None
            else:
                state[key] = None  # a requests session: an original worker makes its own
        return state


def flatten(value: Any) -> Any:
    """``value`` as JSON-ready data in the original's format (transforms as ``py/object``).

    Raises ``TypeError`` for an object that is not a registered transform or a
    Girder client.
    """
    return _Flattener().flatten(value)

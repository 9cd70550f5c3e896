"""The registry of types, formats, validators, converters, modes and bindings.

A *type* (``table``) is a kind of data; a *format* (``csv``, ``rows``) is one way
to hold it. Each registered type/format pair has a validator, a plain function
that says whether some data is in that format; each converter turns one format of
a type into another of the same type. :meth:`Registry.conversion_path` finds the
shortest chain of converters between two formats.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from . import ENTRY_POINT_GROUP
from ._errors import ConversionError, InvalidData, NoConversionPath, UnknownBinding, UnknownFormat, UnknownMode

__all__ = ["ENTRY_POINT_GROUP", "Converter", "Format", "Mode", "Registry"]

logger = logging.getLogger("girder_worker.analysis")

Validator = Callable[[Any], object]
ConvertFunction = Callable[[Any], Any]
FetchFunction = Callable[..., Any]
PushFunction = Callable[..., Any]


@dataclass(frozen=True)
class Format:
    """A type/format pair and the validator that recognises its data."""

    type: str
    format: str
    validator: Validator
    description: str = ""
    example: Any = None  # some data in this format, for documentation


@dataclass(frozen=True)
class Converter:
    """A function that turns data of ``type`` from ``source`` format into ``target`` format."""

    type: str
    source: str
    target: str
    function: ConvertFunction


@dataclass(frozen=True)
class Mode:
    """How to execute a task spec: ``run(task, inputs, context) -> {output id: data}``.

    ``check(task, context)``, when given, runs before any input is fetched, so a
    spec the worker will refuse is refused before anything is downloaded.
    """

    name: str
    run: Callable[..., Mapping[str, Any]]
    check: Callable[..., None] | None = None


def _name(function: Any) -> str:
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


class Registry:
    """Everything the analysis tasks can work with, by name.

    Built-ins are registered by :mod:`girder_worker.analysis`; plugins add theirs
    with the ``add_*`` methods, from their plugin class or from a function in the
    ``girder_worker_analysis`` entry point group::

        def register(registry):
            registry.add_format("tree", "indented", is_indented, description="...")
            registry.add_converter("tree", "indented", "nested", indented_to_nested)
    """

    def __init__(self, *, load_entry_points: bool = False) -> None:
        self._formats: dict[tuple[str, str], Format] = {}
        self._converters: dict[tuple[str, str, str], Converter] = {}
        self._aliases: dict[str, str] = {}
        self._modes: dict[str, Mode] = {}
        self._fetchers: dict[str, FetchFunction] = {}
        self._pushers: dict[str, PushFunction] = {}
        self._load_entry_points = load_entry_points
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()

    # -- registering ------------------------------------------------------------

    def add_format(
        self, type: str, format: str, validator: Validator, description: str = "", example: Any = None
    ) -> Validator:
        """Register ``type``/``format``; ``validator(data)`` returns False or raises
        ``ValueError``/``TypeError`` (whose message says why) for data not in it.
        ``description`` and ``example`` (data in the format) document it."""
        self._formats[(type, format)] = Format(type, format, validator, description, example)
        return validator

    def add_converter(self, type: str, source: str, target: str, function: ConvertFunction) -> ConvertFunction:
        """Register ``function(data)``, which turns ``type`` data from ``source`` into ``target``."""
        for fmt in (source, target):
            if (type, fmt) not in self._formats:
                raise UnknownFormat(f"cannot add converter {type}/{source} -> {target}: {self._unknown(type, fmt)}")
        self._converters[(type, source, target)] = Converter(type, source, target, function)
        return function

    def add_type_alias(self, alias: str, type: str) -> None:
        """Let specs name ``type`` as ``alias`` too (the original's ``python`` for ``object``)."""
        self._aliases[alias] = type

    def add_mode(
        self, name: str, run: Callable[..., Mapping[str, Any]], check: Callable[..., None] | None = None
    ) -> None:
        """Register the mode ``name``; see :class:`Mode`."""
        self._modes[name] = Mode(name, run, check)

    def add_input_binding(self, name: str, fetch: FetchFunction) -> None:
        """Register ``fetch(binding, context)``, which returns the data an input binding names.

        It returns the data itself (``str``, ``bytes`` or an object), or a
        :class:`pathlib.Path` to a file it wrote under ``context.tempdir``.
        """
        self._fetchers[name] = fetch

    def add_output_binding(self, name: str, push: PushFunction) -> None:
        """Register ``push(binding, data, context)``, which sends an output where its binding says.

        ``data`` is the output's data or a :class:`pathlib.Path` to its file; the
        return value (a dict, or None for the binding as given) goes back to the caller.
        """
        self._pushers[name] = push

    # -- entry points -----------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Run every ``girder_worker_analysis`` entry point once (when this registry loads them).

        An entry point that fails is logged by name, entry point and distribution,
        and the others still load.
        """
        if not self._load_entry_points or self._loaded.is_set():
            return
        from .._plugins import _report_for

        with self._load_lock:
            if self._loaded.is_set():
                return
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    ep.load()(self)
                except Exception as exc:
                    report = _report_for(ep)
                    source = f"{report.distribution} {report.version}" if report.distribution else "?"
                    logger.error(
                        "analysis extension %r (entry point %s, from %s) failed: %s: %s; fix or uninstall %s",
                        ep.name,
                        report.entry_point,
                        source,
                        type(exc).__name__,
                        exc,
                        report.distribution or "it",
                    )
            self._loaded.set()

    # -- looking up -------------------------------------------------------------

    def canonical_type(self, type: str) -> str:
        """The registered name of ``type`` (aliases resolved); raise :class:`UnknownFormat`."""
        self.ensure_loaded()
        type = self._aliases.get(type, type)
        if not any(t == type for t, _ in self._formats):
            raise UnknownFormat(f"unknown type {type!r}; the types are {', '.join(self.types())}")
        return type

    def types(self) -> list[str]:
        self.ensure_loaded()
        return sorted({t for t, _ in self._formats})

    def formats(self, type: str | None = None) -> list[Format]:
        """The registered formats, of ``type`` or of every type, sorted."""
        self.ensure_loaded()
        wanted = None if type is None else self._aliases.get(type, type)
        return [self._formats[k] for k in sorted(self._formats) if wanted is None or k[0] == wanted]

    def converters(self, type: str | None = None) -> list[Converter]:
        self.ensure_loaded()
        wanted = None if type is None else self._aliases.get(type, type)
        return [self._converters[k] for k in sorted(self._converters) if wanted is None or k[0] == wanted]

    def validators(self, type: str | None = None, format: str | None = None) -> list[dict[str, Any]]:
        """What ``girder_worker.validators`` answers: the formats matching both (None matches any)."""
        self.ensure_loaded()
        type = None if type is None else self._aliases.get(type, type)
        return [
            {
                "type": f.type,
                "format": f.format,
                "validator": {"name": _name(f.validator), "description": f.description},
            }
            for f in self.formats()
            if type in (None, f.type) and format in (None, f.format)
        ]

    def format_of(self, type: str, format: str) -> Format:
        type = self.canonical_type(type)
        found = self._formats.get((type, format))
        if found is None:
            raise UnknownFormat(self._unknown(type, format))
        return found

    def _unknown(self, type: str, format: str) -> str:
        known = ", ".join(f for t, f in sorted(self._formats) if t == type)
        return f"unknown format {type}/{format}; {type} has formats {known or '(none)'}"

    def mode(self, name: str) -> Mode:
        self.ensure_loaded()
        found = self._modes.get(name)
        if found is None:
            raise UnknownMode(
                f"unknown mode {name!r}; this worker runs modes {', '.join(sorted(self._modes))} "
                "(a plugin can add others)"
            )
        return found

    def fetcher(self, name: str, what: str) -> FetchFunction:
        self.ensure_loaded()
        fetch: FetchFunction = self._binding(self._fetchers, name, what, "input")
        return fetch

    def pusher(self, name: str, what: str) -> PushFunction:
        self.ensure_loaded()
        push: PushFunction = self._binding(self._pushers, name, what, "output")
        return push

    @staticmethod
    def _binding(table: Mapping[str, Any], name: str, what: str, kind: str) -> Any:
        found = table.get(name)
        if found is None:
            raise UnknownBinding(
                f"{what}: unknown binding mode {name!r}; {kind} bindings are {', '.join(sorted(table))}"
            )
        return found

    # -- validating and converting ----------------------------------------------

    def problem(self, type: str, format: str, data: Any) -> str | None:
        """Why ``data`` is not ``type``/``format``, or None when it is."""
        validator = self.format_of(type, format).validator
        try:
            ok = validator(data)
        except (ValueError, TypeError) as exc:
            return str(exc) or exc.__class__.__name__
        return "its validator rejected it" if ok is False else None

    def validate(self, type: str, format: str, data: Any, what: str = "data") -> None:
        """Raise :class:`InvalidData` naming ``what`` unless ``data`` is ``type``/``format``."""
        problem = self.problem(type, format, data)
        if problem is not None:
            raise InvalidData(f"{what} is not of type {type} in format {format}: {problem}")

    def reachable(self, type: str, source: str) -> list[str]:
        """The formats of ``type`` that converters reach from ``source`` (itself included)."""
        type = self.canonical_type(type)
        seen = {source}
        todo = deque([source])
        while todo:
            here = todo.popleft()
            for t, s, d in self._converters:
                if t == type and s == here and d not in seen:
                    seen.add(d)
                    todo.append(d)
        return sorted(seen)

    def conversion_path(self, type: str, source: str, target: str) -> list[Converter]:
        """The shortest chain of converters from ``source`` to ``target`` (empty when equal).

        Among several shortest chains the one whose formats sort first wins, so the
        answer depends only on what is registered, never on the order of registering.
        """
        type = self.canonical_type(type)
        self.format_of(type, source)
        self.format_of(type, target)
        if source == target:
            return []
        edges = [(s, d) for t, s, d in self._converters if t == type]
        distance = {target: 0}  # hops from each format to the target, over reversed edges
        todo = deque([target])
        while todo:
            here = todo.popleft()
            for s, d in edges:
                if d == here and s not in distance:
                    distance[s] = distance[here] + 1
                    todo.append(s)
        if source not in distance:
            sources = sorted(s for s in distance if s != target)
            reached = [f for f in self.reachable(type, source) if f != source]
            raise NoConversionPath(
                f"no conversion path from {type}/{source} to {type}/{target}: from {type}/{source} the "
                f"converters reach {', '.join(reached) or 'no other format'}; {type}/{target} can be made from "
                f"{', '.join(sources) or 'no other format'}"
            )
        path = []
        here = source
        while here != target:
            step = min(d for s, d in edges if s == here and distance.get(d) == distance[here] - 1)
            path.append(self._converters[(type, here, step)])
            here = step
        return path

    def convert_data(
        self, type: str, source: str, target: str, data: Any, validate: bool = True, what: str = "data"
    ) -> Any:
        """``data`` of ``type`` converted from ``source`` to ``target`` format.

        With ``validate``, the data is checked against ``source`` first and the
        result of every converter against its format.
        """
        path = self.conversion_path(type, source, target)
        if validate:
            self.validate(type, source, data, what)
        for converter in path:
            try:
                data = converter.function(data)
            except Exception as exc:
                raise ConversionError(
                    f"converting {what} from {type}/{converter.source} to {type}/{converter.target} failed: "
                    f"{exc.__class__.__name__}: {exc}"
                ) from exc
            if validate:
                self.validate(type, converter.target, data, f"{what}, converted to {converter.target},")
        return data

    def describe(self) -> Iterable[tuple[Format, list[str]]]:
        """Each format with the formats its converters turn it into, for documentation."""
        for fmt in self.formats():
            yield fmt, [c.target for c in self.converters(fmt.type) if c.source == fmt.format]

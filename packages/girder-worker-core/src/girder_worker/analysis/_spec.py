"""Reading task specs and bindings in the original girder-worker's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._errors import InvalidSpec

__all__ = ["Port", "TaskSpec", "binding_mode", "parse_task"]

_TARGETS = ("memory", "filepath")
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Port:
    """One declared input or output of a task."""

    kind: str  # "input" or "output"
    id: str
    type: str | None
    format: str | None
    target: str = "memory"
    default: Any = _NO_DEFAULT
    filename: str | None = None
    label: str | None = None  # how messages name it, instead of "input 'a'"

    @property
    def what(self) -> str:
        return self.label or f"{self.kind} {self.id!r}"

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def declared(self) -> str:
        return f"{self.type or 'any type'}/{self.format or 'any format'}"

    def default_binding(self) -> dict[str, Any]:
        """The default as a binding: a dict with ``data`` is one already."""
        if isinstance(self.default, Mapping) and "data" in self.default:
            return {"format": self.format, **self.default}
        return {"format": self.format, "data": self.default}


@dataclass(frozen=True)
class TaskSpec:
    """A task spec: ``{"name", "mode", "inputs": [...], "outputs": [...], ...}``."""

    raw: Mapping[str, Any]
    name: str
    mode: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    def output(self, id: str) -> Port | None:
        return next((p for p in self.outputs if p.id == id), None)


def _port(kind: str, value: Any, index: int, task: str) -> Port:
    where = f"{task}: {kind} #{index + 1}"
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{where} must be an object like {{'name': 'a', 'type': 'table', 'format': 'csv'}}")
    id = value.get("id", value.get("name"))
    if not isinstance(id, str) or not id:
        raise InvalidSpec(f"{where} has no 'id' or 'name'")
    target = value.get("target", "memory")
    if target not in _TARGETS:
        raise InvalidSpec(f"{where} ({id!r}) has target {target!r}; use 'memory' or 'filepath'")
    for key in ("type", "format", "filename"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidSpec(f"{where} ({id!r}): {key!r} must be a string")
    return Port(
        kind=kind,
        id=id,
        type=value.get("type"),
        format=value.get("format"),
        target=target,
        default=value.get("default", _NO_DEFAULT) if kind == "input" else _NO_DEFAULT,
        filename=value.get("filename"),
    )


def _ports(kind: str, values: Any, task: str) -> tuple[Port, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        raise InvalidSpec(f"{task}: {kind}s must be a list, got {type(values).__name__}")
    ports = tuple(_port(kind, value, i, task) for i, value in enumerate(values))
    seen: set[str] = set()
    for port in ports:
        if port.id in seen:
            raise InvalidSpec(f"{task}: two {kind}s are named {port.id!r}")
        seen.add(port.id)
    return ports


def parse_task(task: Any) -> TaskSpec:
    """Check ``task`` and read it; raise :class:`InvalidSpec` saying what is wrong."""
    if not isinstance(task, Mapping):
        raise InvalidSpec(f"the task spec must be an object (a dict), got {type(task).__name__}")
    name = task.get("name")
    label = f"task {name!r}" if isinstance(name, str) and name else "the task"
    mode = task.get("mode", "python")
    if not isinstance(mode, str):
        raise InvalidSpec(f"{label}: 'mode' must be a string, got {type(mode).__name__}")
    return TaskSpec(
        raw=task,
        name=label,
        mode=mode,
        inputs=_ports("input", task.get("inputs"), label),
        outputs=_ports("output", task.get("outputs"), label),
    )


def check_binding(binding: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(binding, Mapping):
        raise InvalidSpec(
            f"{what}: the binding must be an object such as {{'format': 'text', 'data': ...}} "
            f"or {{'mode': 'http', 'url': ...}}, got {type(binding).__name__}"
        )
    return binding


def binding_mode(binding: Mapping[str, Any]) -> str:
    """The binding's mode: its ``mode``, else its ``url``'s scheme, else ``inline``."""
    mode = binding.get("mode")
    if isinstance(mode, str) and mode:
        return mode
    url = binding.get("url")
    if isinstance(url, str) and url:
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            return "http"
        if scheme == "file":
            return "local"
        return scheme or "inline"
    return "inline"

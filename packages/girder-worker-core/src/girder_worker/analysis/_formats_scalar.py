"""Single values: ``string``, ``number``, ``integer``, ``boolean`` and ``object``.

Each type has its own in-memory format (``text`` for strings) and ``json``, the
JSON text of the same value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register"]


def _kind(data: Any) -> str:
    return type(data).__name__


def is_text(data: Any) -> None:
    if not isinstance(data, str):
        raise TypeError(f"expected a str, got {_kind(data)}")


def is_number(data: Any) -> None:
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        raise TypeError(f"expected an int or a float, got {_kind(data)}")


def is_integer(data: Any) -> None:
    if isinstance(data, bool) or not isinstance(data, int):
        raise TypeError(f"expected an int, got {_kind(data)}")


def is_boolean(data: Any) -> None:
    if not isinstance(data, bool):
        raise TypeError(f"expected True or False, got {_kind(data)}")


def is_object(data: Any) -> None:
    """Any Python value; it must be JSON-compatible to leave the worker."""


def parse_json(data: Any) -> Any:
    """The value of JSON text ``data``; ``ValueError``/``TypeError`` says what is wrong."""
    is_text(data)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


def json_of(check: Callable[[Any], None]) -> Callable[[Any], None]:
    """A validator of JSON text whose value passes ``check``."""

    def validate(data: Any) -> None:
        value = parse_json(data)
        try:
            check(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the JSON value is wrong: {exc}") from None

    validate.__name__ = validate.__qualname__ = f"json_of_{check.__name__}"
    return validate


def to_json(data: Any) -> str:
    return json.dumps(data)


# type, its own format, validator, description, example, the type with its article
_SCALARS: list[tuple[str, str, Callable[[Any], None], str, Any, str]] = [
    ("string", "text", is_text, "A Python str.", "text", "a string"),
    ("number", "number", is_number, "A Python int or float (not a bool).", 2.5, "a number"),
    ("integer", "integer", is_integer, "A Python int (not a bool).", 3, "an integer"),
    ("boolean", "boolean", is_boolean, "True or False.", True, "a boolean"),
    (
        "object",
        "object",
        is_object,
        "Any Python value; JSON-compatible to leave the worker.",
        {"a": [1, 2]},
        "an object",
    ),
]


def register(registry: Registry) -> None:
    for type_, own, check, description, example, noun in _SCALARS:
        registry.add_format(type_, own, check, description, example)
        registry.add_format(type_, "json", json_of(check), f"JSON text of {noun}.", to_json(example))
        registry.add_converter(type_, own, "json", to_json)
        registry.add_converter(type_, "json", own, json.loads)
    registry.add_type_alias("json", "object")
    registry.add_type_alias("python", "object")

"""The ``table`` type: rows of named fields, in eight formats.

``rows`` is the hub: ``{"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}``. The
other formats convert to and from it (the JSON list forms through ``objectlist``).

Conversions between ``rows`` and delimited text give every row every field, so
their size is rows x fields, which small input can make huge (a header of
thousands of fields over lines of one value each; objects with distinct keys):
they are bounded by :func:`._limits.check_cells`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._formats_scalar import is_text, json_of, to_json
from ._limits import check_cells

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register"]

# Cells that read as numbers become numbers; "nan", "inf" and the like stay text.
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def _cell(text: str) -> Any:
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _kind(data: Any) -> str:
    return type(data).__name__


def is_objectlist(data: Any) -> None:
    if not isinstance(data, list):
        raise TypeError(f"expected a list of objects, got {_kind(data)}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise TypeError(f"item {i} is a {_kind(row)}, not an object")


def is_column_names(data: Any) -> None:
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise TypeError("expected a list of field names (str)")


def is_rows(data: Any) -> None:
    if not isinstance(data, dict) or "fields" not in data or "rows" not in data:
        raise TypeError('expected an object with "fields" and "rows"')
    is_column_names(data["fields"])
    try:
        is_objectlist(data["rows"])
    except TypeError as exc:
        raise TypeError(f'"rows": {exc}') from None
    fields = set(data["fields"])
    for i, row in enumerate(data["rows"]):
        extra = [key for key in row if key not in fields]
        if extra:
            raise ValueError(f'row {i} has {", ".join(map(repr, extra))}, which are not in "fields"')


def _reader(delimiter: str, name: str) -> Callable[[Any], list[list[str]]]:
    def read(data: Any) -> list[list[str]]:
        is_text(data)
        try:
            lines = [line for line in csv.reader(io.StringIO(data, newline=""), delimiter=delimiter) if line]
        except csv.Error as exc:
            raise ValueError(f"not readable as delimited text ({exc})") from None
        if lines:
            width = len(lines[0])
            for number, line in enumerate(lines[1:], start=2):
                if len(line) > width:
                    raise ValueError(f"line {number} has {len(line)} values, but the header names {width} fields")
        return lines

    read.__name__ = read.__qualname__ = f"is_{name}"
    return read


def _to_rows(read: Callable[[Any], list[list[str]]]) -> Callable[[Any], dict[str, Any]]:
    def convert(data: Any) -> dict[str, Any]:
        lines = read(data)
        if not lines:
            return {"fields": [], "rows": []}
        fields, *body = lines
        check_cells(len(body), len(fields))  # short lines are padded to every field
        rows = [{f: _cell(line[i]) if i < len(line) else None for i, f in enumerate(fields)} for line in body]
        return {"fields": fields, "rows": rows}

    return convert


def _text_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _from_rows(delimiter: str) -> Callable[[Any], str]:
    def convert(data: Any) -> str:
        out = io.StringIO()
        check_cells(len(data["rows"]), len(data["fields"]))  # each row is written with every field
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        if data["fields"]:
            writer.writerow(data["fields"])
        for row in data["rows"]:
            writer.writerow([_text_cell(row.get(f)) for f in data["fields"]])
        return out.getvalue()

    return convert


def objectlist_to_rows(data: list[dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, None] = {}
    for row in data:
        fields.update(dict.fromkeys(row))
    return {"fields": list(fields), "rows": [dict(row) for row in data]}


def rows_to_objectlist(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in data["rows"]]


def rows_to_column_names(data: dict[str, Any]) -> list[str]:
    return list(data["fields"])


def is_jsonlines(data: Any) -> None:
    is_text(data)
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number} is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError(f"line {number} is a JSON {_kind(value)}, not an object")


def jsonlines_to_objectlist(data: str) -> list[Any]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def objectlist_to_jsonlines(data: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in data)


def register(registry: Registry) -> None:
    read_csv, read_tsv = _reader(",", "csv"), _reader("\t", "tsv")
    rows = {"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}
    formats: list[tuple[str, Callable[[Any], Any], str, Any]] = [
        ("rows", is_rows, "The field names, and one object per row: the hub of the table formats.", rows),
        ("rows.json", json_of(is_rows), "JSON text of rows.", to_json(rows)),
        ("objectlist", is_objectlist, "A list of objects, one per row.", rows["rows"]),
        ("objectlist.json", json_of(is_objectlist), "JSON text of an objectlist.", to_json(rows["rows"])),
        ("jsonlines", is_jsonlines, "Text with one JSON object per line.", '{"a": 1, "b": 2}\n'),
        ("csv", read_csv, "Comma-separated text with a header line; numeric cells read as numbers.", "a,b\n1,2\n"),
        ("tsv", read_tsv, "Tab-separated text with a header line; numeric cells read as numbers.", "a\tb\n1\t2\n"),
        ("column.names", is_column_names, "The field names alone (made from rows, not back).", ["a", "b"]),
    ]
    for name, validator, description, example in formats:
        registry.add_format("table", name, validator, description, example)
    converters: list[tuple[str, str, Callable[[Any], Any]]] = [
        ("csv", "rows", _to_rows(read_csv)),
        ("rows", "csv", _from_rows(",")),
        ("tsv", "rows", _to_rows(read_tsv)),
        ("rows", "tsv", _from_rows("\t")),
        ("rows", "rows.json", to_json),
        ("rows.json", "rows", json.loads),
        ("rows", "objectlist", rows_to_objectlist),
        ("objectlist", "rows", objectlist_to_rows),
        ("objectlist", "objectlist.json", to_json),
        ("objectlist.json", "objectlist", json.loads),
        ("objectlist", "jsonlines", objectlist_to_jsonlines),
        ("jsonlines", "objectlist", jsonlines_to_objectlist),
        ("rows", "column.names", rows_to_column_names),
    ]
    for source, target, function in converters:
        registry.add_converter("table", source, target, function)

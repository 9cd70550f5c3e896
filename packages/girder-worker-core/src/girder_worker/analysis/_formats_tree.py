"""The ``tree`` type: ``nested`` (objects), ``nested.json`` and ``newick`` text.

A ``nested`` node is ``{"node_data": {"node name": "A"}, "edge_data": {"weight":
0.5}, "children": [...]}``; ``edge_data`` (the branch to the node's parent) and
``children`` may be left out. Newick names are kept as written (underscores stay
underscores). Parsing and writing are iterative, so deep trees do not hit
Python's recursion limit. A node costs hundreds of bytes for each byte of Newick
text that makes it, so the text's nodes are counted first, against
:func:`._limits.check_nodes`.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from ._formats_scalar import is_text, json_of, to_json
from ._limits import check_nodes

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["nested_to_newick", "newick_to_nested", "register"]

NAME, WEIGHT = "node name", "weight"
_TOKEN = re.compile(r"\s+|\[[^\]]*\]?|'(?:[^']|'')*'|[(),:;]|[^\s()\[\]',:;]+")
_NEEDS_QUOTES = re.compile(r"[\s()\[\]',:;]")
_INTEGER = re.compile(r"[+-]?\d+")
_PUNCTUATION = ("(", ")", ",", ":", ";")


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected {text[pos]!r} at character {pos + 1}")
        piece = match.group()
        if piece[0] == "[" and not piece.endswith("]"):
            raise ValueError(f"unclosed comment at character {pos + 1}")
        if not piece.isspace() and piece[0] != "[":
            tokens.append(piece)
        pos = match.end()
    return tokens


def _label(piece: str) -> str:
    return piece[1:-1].replace("''", "'") if piece.startswith("'") else piece


def _length(piece: str) -> int | float:
    try:
        value = int(piece) if _INTEGER.fullmatch(piece) else float(piece)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise ValueError(f"branch length {piece!r} is not a finite number")
    return value


def _new() -> dict[str, Any]:
    return {"node_data": {}, "children": []}


def newick_to_nested(text: str) -> dict[str, Any]:
    """Parse one Newick tree; ``ValueError`` says where it is malformed."""
    is_text(text)
    check_nodes(text.count("(") + text.count(",") + 1)  # each one opens a node; an upper bound
    tokens = _tokens(text)
    if not tokens or tokens[-1] != ";":
        raise ValueError("a Newick tree ends with ';'")
    root = current = _new()
    parents: list[dict[str, Any]] = []
    i = 0
    for_weight = False
    while i < len(tokens) - 1:
        piece = tokens[i]
        if for_weight:
            current.setdefault("edge_data", {})[WEIGHT] = _length(piece)
            for_weight = False
        elif piece == "(":
            child = _new()
            current["children"].append(child)
            parents.append(current)
            current = child
        elif piece == ",":
            if not parents:
                raise ValueError("',' outside of parentheses")
            current = _new()
            parents[-1]["children"].append(current)
        elif piece == ")":
            if not parents:
                raise ValueError("')' without its '('")
            current = parents.pop()
        elif piece == ":":
            if i + 1 >= len(tokens) - 1 or tokens[i + 1] in _PUNCTUATION:
                raise ValueError("':' without a branch length after it")
            for_weight = True
        elif piece == ";":
            raise ValueError("';' before the end of the text (one tree only)")
        else:
            if NAME in current["node_data"]:
                raise ValueError(f"node {current['node_data'][NAME]!r} has a second name {_label(piece)!r}")
            current["node_data"][NAME] = _label(piece)
        i += 1
    if parents:
        raise ValueError(f"{len(parents)} '(' not closed")
    root["node_fields"], root["edge_fields"] = [NAME], [WEIGHT]
    return root


def is_nested(data: Any) -> None:
    todo = [(data, "the root")]
    while todo:
        node, where = todo.pop()
        if not isinstance(node, dict):
            raise TypeError(f"{where} is a {type(node).__name__}, not an object")
        for key in ("node_data", "edge_data"):
            if key in node and not isinstance(node[key], dict):
                raise TypeError(f'{where}: "{key}" is not an object')
        children = node.get("children", [])
        if not isinstance(children, list):
            raise TypeError(f'{where}: "children" is not a list')
        todo.extend((child, f"child {i} of {where}") for i, child in enumerate(children))


def _quote(name: str) -> str:
    if name and not _NEEDS_QUOTES.search(name):
        return name
    return "'" + name.replace("'", "''") + "'" if name else ""


def _node_text(node: dict[str, Any]) -> str:
    name = node.get("node_data", {}).get(NAME)
    text = _quote(str(name)) if name is not None else ""
    weight = node.get("edge_data", {}).get(WEIGHT)
    return f"{text}:{weight}" if weight is not None else text


def nested_to_newick(data: dict[str, Any]) -> str:
    """Write a ``nested`` tree as Newick text ending with ';'."""
    out: list[str] = []
    # ("open", node) emits the node's subtree; str items are emitted as they are.
    todo: list[Any] = [("open", data)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node = item[1]
        children = node.get("children") or []
        if not children:
            out.append(_node_text(node))
            continue
        out.append("(")
        todo.append(")" + _node_text(node))
        for i, child in enumerate(reversed(children)):
            todo.append(("open", child))
            if i < len(children) - 1:
                todo.append(",")
    return "".join(out) + ";"


def is_newick(data: Any) -> None:
    newick_to_nested(data)


def register(registry: Registry) -> None:
    example = {"node_data": {NAME: "A"}, "children": [{"node_data": {NAME: "B"}, "edge_data": {WEIGHT: 1.5}}]}
    registry.add_format(
        "tree",
        "nested",
        is_nested,
        "Nested objects: each node has node_data (its name), edge_data (the weight of the branch above it) "
        "and children.",
        example,
    )
    registry.add_format("tree", "nested.json", json_of(is_nested), "JSON text of a nested tree.", to_json(example))
    registry.add_format("tree", "newick", is_newick, "Newick text; names are kept as written.", "(B:1.5)A;")
    registry.add_converter("tree", "nested", "nested.json", to_json)
    registry.add_converter("tree", "nested.json", "nested", json.loads)
    registry.add_converter("tree", "newick", "nested", newick_to_nested)
    registry.add_converter("tree", "nested", "newick", nested_to_newick)

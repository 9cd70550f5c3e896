"""The conversion path search, and conversion along a path with each hop checked."""

from __future__ import annotations

import pytest

from girder_worker.analysis import (
    ConversionError,
    InvalidData,
    NoConversionPath,
    Registry,
    UnknownFormat,
    new_registry,
    validators,
)


def letters(*edges: str, order: int = 1) -> Registry:
    """A registry of type ``t`` whose formats are letters; ``"ab"`` converts a to b."""
    registry = Registry()
    for name in sorted({c for edge in edges for c in edge}):
        registry.add_format("t", name, lambda data: isinstance(data, list))
    for edge in edges[::order]:
        registry.add_converter("t", edge[0], edge[1], lambda data, e=edge: [*data, e])
    return registry


def hops(registry: Registry, source: str, target: str) -> list[str]:
    return [c.source + c.target for c in registry.conversion_path("t", source, target)]


def test_the_fewest_hops_win():
    registry = letters("ab", "bc", "cd", "ad")

    assert hops(registry, "a", "d") == ["ad"]
    assert hops(registry, "a", "c") == ["ab", "bc"]


@pytest.mark.parametrize("order", [1, -1])
def test_among_equally_short_paths_the_first_in_format_order_wins(order):
    registry = letters("ae", "ez", "ac", "cz", "ab", "bz", order=order)

    assert hops(registry, "a", "z") == ["ab", "bz"]


def test_the_tie_break_looks_past_the_first_hop():
    registry = letters("ab", "be", "ez", "bd", "dz", "ac", "cy")

    assert hops(registry, "a", "z") == ["ab", "bd", "dz"]


def test_the_same_format_needs_no_converter():
    assert hops(letters("ab"), "a", "a") == []


def test_no_path_names_both_ends_and_what_is_reachable():
    registry = letters("ab", "bc", "xy", "yc", "cz")

    with pytest.raises(NoConversionPath) as info:
        registry.conversion_path("t", "a", "x")

    assert str(info.value) == (
        "no conversion path from t/a to t/x: from t/a the converters reach b, c, z; "
        "t/x can be made from no other format"
    )
    with pytest.raises(NoConversionPath, match=r"t/c can be made from a, b, x, y$"):
        registry.conversion_path("t", "z", "c")


def test_unknown_formats_and_types_are_named_with_what_exists():
    registry = letters("ab")

    with pytest.raises(UnknownFormat, match=r"^unknown format t/q; t has formats a, b$"):
        registry.conversion_path("t", "a", "q")
    with pytest.raises(UnknownFormat, match=r"^unknown type 'u'; the types are t$"):
        registry.conversion_path("u", "a", "b")
    with pytest.raises(UnknownFormat, match="cannot add converter t/a -> q: unknown format t/q"):
        registry.add_converter("t", "a", "q", list)


def test_conversion_applies_every_hop_and_checks_each_result():
    registry = letters("ab", "bc")

    assert registry.convert_data("t", "a", "c", []) == ["ab", "bc"]
    registry.add_converter("t", "a", "b", lambda data: "not a list")
    with pytest.raises(InvalidData, match=r"^x, converted to b, is not of type t in format b: its validator rejected"):
        registry.convert_data("t", "a", "c", [], what="x")
    with pytest.raises(InvalidData, match=r"^x is not of type t in format a"):
        registry.convert_data("t", "a", "c", "no list", what="x")


def test_without_validation_no_hop_is_checked():
    registry = letters("ab", "bc")
    registry.add_converter("t", "a", "b", lambda data: ("tuple",))

    assert registry.convert_data("t", "a", "c", "anything", validate=False) == ["tuple", "bc"]


def test_a_failing_converter_is_named():
    registry = letters("ab", "bc")
    registry.add_converter("t", "b", "c", lambda data: 1 / 0)

    with pytest.raises(ConversionError, match=r"from t/b to t/c failed: ZeroDivisionError") as info:
        registry.convert_data("t", "a", "c", [])
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("type_", "source", "target", "path"),
    [
        ("table", "csv", "objectlist.json", ["csv", "rows", "objectlist", "objectlist.json"]),
        ("table", "csv", "jsonlines", ["csv", "rows", "objectlist", "jsonlines"]),
        ("table", "tsv", "csv", ["tsv", "rows", "csv"]),
        ("table", "rows.json", "column.names", ["rows.json", "rows", "column.names"]),
        ("tree", "newick", "nested.json", ["newick", "nested", "nested.json"]),
        ("python", "object", "json", ["object", "json"]),
    ],
)
def test_builtin_paths(type_, source, target, path):
    found = new_registry().conversion_path(type_, source, target)

    assert [found[0].source] + [c.target for c in found] == path


def test_column_names_convert_to_nothing():
    with pytest.raises(NoConversionPath, match=r"from table/column\.names the converters reach no other format"):
        new_registry().conversion_path("table", "column.names", "csv")


def test_validators_match_type_and_format_with_none_for_any():
    everything = validators(None, None)
    assert len(everything) == len(new_registry().formats())

    assert [v["format"] for v in validators("tree", None)] == ["nested", "nested.json", "newick"]
    assert [v["type"] for v in validators(None, "json")] == ["boolean", "integer", "number", "object", "string"]
    assert validators("table", "csv") == [
        {
            "type": "table",
            "format": "csv",
            "validator": {
                "name": "girder_worker.analysis._formats_table.is_csv",
                "description": "Comma-separated text with a header line; numeric cells read as numbers.",
            },
        }
    ]
    assert validators("table", "newick") == []
    assert validators("python", "object")[0]["type"] == "object"

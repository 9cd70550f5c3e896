"""Every built-in converter and validator, on the data a user would give them."""

from __future__ import annotations

import pytest

from girder_worker.analysis import ConversionError, InvalidData, convert, new_registry

MiB = 1024 * 1024

ROWS = {"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}
NESTED = {
    "node_data": {},
    "children": [
        {
            "node_data": {"node name": "C"},
            "edge_data": {"weight": 0.5},
            "children": [
                {"node_data": {"node name": "A"}, "edge_data": {"weight": 1}, "children": []},
                {"node_data": {"node name": "B"}, "edge_data": {"weight": 2.5}, "children": []},
            ],
        },
        {"node_data": {"node name": "d e"}, "children": []},
    ],
    "node_fields": ["node name"],
    "edge_fields": ["weight"],
}
NEWICK = "((A:1,B:2.5)C:0.5,'d e');"

# (type, source format, target format, data, converted data): one case per converter.
CONVERSIONS = [
    ("string", "text", "json", 'say "hi"', '"say \\"hi\\""'),
    ("string", "json", "text", '"say \\"hi\\""', 'say "hi"'),
    ("number", "number", "json", 2.5, "2.5"),
    ("number", "json", "number", "2.5", 2.5),
    ("integer", "integer", "json", 3, "3"),
    ("integer", "json", "integer", "3", 3),
    ("boolean", "boolean", "json", True, "true"),
    ("boolean", "json", "boolean", "false", False),
    ("object", "object", "json", {"a": [1, None]}, '{"a": [1, null]}'),
    ("object", "json", "object", '{"a": [1, null]}', {"a": [1, None]}),
    ("table", "csv", "rows", "a,b\n1,2\n", ROWS),
    ("table", "rows", "csv", {"fields": ["a", "b"], "rows": [{"a": 1, "b": "x,y"}]}, 'a,b\n1,"x,y"\n'),
    ("table", "tsv", "rows", "a\tb\n1\t2\n", ROWS),
    ("table", "rows", "tsv", ROWS, "a\tb\n1\t2\n"),
    ("table", "rows", "rows.json", ROWS, '{"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}'),
    ("table", "rows.json", "rows", '{"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}', ROWS),
    ("table", "rows", "objectlist", ROWS, [{"a": 1, "b": 2}]),
    (
        "table",
        "objectlist",
        "rows",
        [{"a": 1}, {"b": 2, "a": 3}],
        {"fields": ["a", "b"], "rows": [{"a": 1}, {"b": 2, "a": 3}]},
    ),
    ("table", "objectlist", "objectlist.json", [{"a": 1}], '[{"a": 1}]'),
    ("table", "objectlist.json", "objectlist", '[{"a": 1}]', [{"a": 1}]),
    ("table", "objectlist", "jsonlines", [{"a": 1}, {"a": 2}], '{"a": 1}\n{"a": 2}\n'),
    ("table", "jsonlines", "objectlist", '{"a": 1}\n\n{"a": 2}\n', [{"a": 1}, {"a": 2}]),
    ("table", "rows", "column.names", ROWS, ["a", "b"]),
    ("tree", "newick", "nested", NEWICK, NESTED),
    ("tree", "nested", "newick", NESTED, NEWICK),
    ("tree", "nested", "nested.json", {"node_data": {}}, '{"node_data": {}}'),
    ("tree", "nested.json", "nested", '{"node_data": {}}', {"node_data": {}}),
]

# (type, format, valid data, invalid data, what the error says about the invalid data)
VALIDATIONS = [
    ("string", "text", "x", 1, "expected a str, got int"),
    ("string", "json", '"x"', "x", "not valid JSON"),
    ("number", "number", 1.5, True, "expected an int or a float, got bool"),
    ("number", "json", "1e3", '"1"', "the JSON value is wrong: expected an int or a float, got str"),
    ("integer", "integer", 2, 2.0, "expected an int, got float"),
    ("integer", "json", "-2", "2.5", "expected an int, got float"),
    ("boolean", "boolean", False, 0, "expected True or False, got int"),
    ("boolean", "json", "true", "1", "expected True or False, got int"),
    ("object", "object", {"any": "thing"}, None, None),
    ("object", "json", "[]", "{", "not valid JSON"),
    ("table", "rows", ROWS, {"fields": ["a"], "rows": [{"b": 1}]}, "row 0 has 'b', which are not in \"fields\""),
    ("table", "rows.json", '{"fields": [], "rows": []}', "[]", 'expected an object with "fields" and "rows"'),
    ("table", "objectlist", [{}], [{}, 1], "item 1 is a int, not an object"),
    ("table", "objectlist.json", "[]", "{}", "expected a list of objects, got dict"),
    ("table", "jsonlines", '{"a": 1}\n', '{"a": 1}\n[1]\n', "line 2 is a JSON list, not an object"),
    ("table", "csv", "a,b\n1\n", "a,b\n1,2,3\n", "line 2 has 3 values, but the header names 2 fields"),
    ("table", "tsv", "a\tb\n", b"a\tb\n", "expected a str, got bytes"),
    ("table", "column.names", ["a"], ["a", 1], "expected a list of field names"),
    ("tree", "nested", NESTED, {"children": [{"children": {}}]}, 'child 0 of the root: "children" is not a list'),
    ("tree", "nested.json", "{}", "[]", "the root is a list, not an object"),
    ("tree", "newick", "(A,B);", "(A,B;", "1 '(' not closed"),
]


@pytest.fixture(scope="module")
def registry():
    return new_registry()


def test_every_converter_has_a_case(registry):
    registered = {(c.type, c.source, c.target) for c in registry.converters()}
    assert registered == {case[:3] for case in CONVERSIONS}


def test_every_format_has_a_case(registry):
    registered = {(f.type, f.format) for f in registry.formats()}
    assert registered == {case[:2] for case in VALIDATIONS}


@pytest.mark.parametrize(("type_", "source", "target", "data", "expected"), CONVERSIONS)
def test_converter(registry, type_, source, target, data, expected):
    [converter] = registry.conversion_path(type_, source, target)

    assert converter.function(data) == expected
    registry.validate(type_, target, expected)


@pytest.mark.parametrize(("type_", "format_", "valid", "invalid", "problem"), VALIDATIONS)
def test_validator(registry, type_, format_, valid, invalid, problem):
    assert registry.problem(type_, format_, valid) is None
    if problem is not None:
        found = registry.problem(type_, format_, invalid)
        assert found is not None
        assert problem in found


def test_the_originals_csv_example():
    result = convert("table", {"format": "csv", "data": "a,b\n1,2\n"}, {"format": "rows"})

    assert result == {"format": "rows", "data": {"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]}}


def test_csv_cells_become_numbers_but_nan_and_inf_stay_text(registry):
    text = 'n,x,s\n1,2.5,"a, b"\n-3,1e3,nan\n+4,.5,inf\n007,,\n'

    rows = registry.convert_data("table", "csv", "rows", text)["rows"]

    assert rows == [
        {"n": 1, "x": 2.5, "s": "a, b"},
        {"n": -3, "x": 1000.0, "s": "nan"},
        {"n": 4, "x": 0.5, "s": "inf"},
        {"n": 7, "x": "", "s": ""},
    ]


def test_a_short_csv_line_leaves_its_last_fields_empty(registry):
    rows = registry.convert_data("table", "csv", "rows", "a,b,c\n1\n")

    assert rows == {"fields": ["a", "b", "c"], "rows": [{"a": 1, "b": None, "c": None}]}


def test_rows_to_csv_writes_missing_and_nested_values(registry):
    rows = {"fields": ["a", "b"], "rows": [{"a": None, "b": [1, 2]}, {"b": {"k": "v"}}]}

    assert registry.convert_data("table", "rows", "csv", rows) == 'a,b\n,"[1, 2]"\n,"{""k"": ""v""}"\n'


def test_an_empty_table_converts_everywhere(registry):
    for middle in ("csv", "tsv", "objectlist", "objectlist.json", "jsonlines", "rows.json"):
        there = registry.convert_data("table", "csv", middle, "")
        assert registry.convert_data("table", middle, "rows", there) == {"fields": [], "rows": []}, middle
    assert registry.convert_data("table", "csv", "column.names", "") == []


def test_csv_survives_a_round_trip_through_every_format(registry):
    text = 'name,size\nx,1\n"y, z",2.5\n'
    for middle in ("rows", "rows.json", "objectlist", "objectlist.json", "jsonlines", "tsv"):
        there = registry.convert_data("table", "csv", middle, text)
        assert registry.convert_data("table", middle, "csv", there) == text, middle


def test_newick_quoting_comments_and_lengths(registry):
    nested = registry.convert_data("tree", "newick", "nested", "[a comment](  'it''s':1e-3 , B_c : -2 )root;\n")

    first, second = nested["children"]
    assert first == {"node_data": {"node name": "it's"}, "edge_data": {"weight": 0.001}, "children": []}
    assert second["node_data"] == {"node name": "B_c"}
    assert second["edge_data"] == {"weight": -2}
    assert nested["node_data"] == {"node name": "root"}
    assert registry.convert_data("tree", "nested", "newick", nested) == "('it''s':0.001,B_c:-2)root;"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("(A,B)", "a Newick tree ends with ';'"),
        ("(A,B));", "')' without its '('"),
        ("A,B;", "',' outside of parentheses"),
        ("(A:x,B);", "branch length 'x' is not a finite number"),
        ("(A:,B);", "':' without a branch length after it"),
        ("(A B);", "node 'A' has a second name 'B'"),
        ("(A);(B);", "';' before the end of the text"),
        ("(A[unclosed);", "unclosed comment"),
    ],
)
def test_malformed_newick_says_what_is_wrong(registry, text, problem):
    with pytest.raises(InvalidData, match="is not of type tree in format newick") as info:
        registry.convert_data("tree", "newick", "nested", text)
    assert problem in str(info.value)


def test_deep_trees_need_no_recursion(registry):
    depth = 20_000
    newick = "(" * depth + "leaf" + ")" * depth + ";"

    nested = registry.convert_data("tree", "newick", "nested", newick)

    assert registry.convert_data("tree", "nested", "newick", nested) == newick


def test_every_documented_example_is_valid_and_converts_everywhere_it_can(registry):
    for fmt in registry.formats():
        registry.validate(fmt.type, fmt.format, fmt.example, f"the example of {fmt.type}/{fmt.format}")
        for target in registry.reachable(fmt.type, fmt.format):
            registry.convert_data(fmt.type, fmt.format, target, fmt.example)


def test_a_wide_csv_of_short_lines_is_refused_before_it_is_padded_to_every_field():
    # 17 kB: 2,000 fields over 3,000 lines of one value, which rows pads to 6 million cells (186 MB).
    wide = ",".join(f"c{i}" for i in range(2000)) + "\n" + "1\n" * 3000

    with pytest.raises(ConversionError) as info:
        convert("table", {"format": "csv", "data": wide}, {"format": "rows"})

    assert (
        "would have 3,000 rows x 2,000 fields = 6,000,000 cells, more than 4,194,304 "
        "(GIRDER_WORKER_MAX_DATA_BYTES / 16)" in str(info.value)
    )
    small = convert("table", {"format": "csv", "data": wide}, {"format": "rows"}, max_data_bytes=200 * 1024 * 1024)
    assert len(small["data"]["rows"]) == 3000


def test_objects_with_distinct_keys_are_refused_before_they_become_a_square_csv():
    lines = "".join(f'{{"k{i}": 1}}\n' for i in range(3000))

    with pytest.raises(ConversionError, match=r"3,000 rows x 3,000 fields = 9,000,000 cells, more than 65,536"):
        convert("table", {"format": "jsonlines", "data": lines}, {"format": "csv"}, max_data_bytes=1024 * 1024)


def test_a_newick_text_of_more_nodes_than_the_budget_is_refused():
    with pytest.raises(InvalidData, match=r"has more than 4,096 nodes \(GIRDER_WORKER_MAX_DATA_BYTES / 256\)"):
        convert("tree", {"format": "newick", "data": "(" + "," * 5000 + ");"}, {"format": "nested"}, max_data_bytes=MiB)
    assert convert("tree", {"format": "newick", "data": "(a,b);"}, {"format": "nested"}, max_data_bytes=MiB)

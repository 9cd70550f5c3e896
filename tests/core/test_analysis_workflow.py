"""The workflow mode: steps run in dependency order, fed through their connections."""

from __future__ import annotations

import pytest

from girder_worker.analysis import InvalidData, InvalidSpec, ModeNotAllowed, run


def step(name: str, script: str, inputs: list[tuple[str, str, str]], outputs: list[tuple[str, str, str]]) -> dict:
    def ports(values):
        return [{"name": n, "type": t, "format": f} for n, t, f in values]

    return {
        "name": name,
        "task": {"mode": "python", "script": script, "inputs": ports(inputs), "outputs": ports(outputs)},
    }


# Listed out of order on purpose: "total" needs "double", which needs the workflow input.
WORKFLOW = {
    "name": "sum of doubles",
    "mode": "workflow",
    "inputs": [{"name": "table", "type": "table", "format": "csv"}],
    "outputs": [
        {"name": "total", "type": "number", "format": "json"},
        {"name": "doubled", "type": "table", "format": "rows"},
    ],
    "steps": [
        step("total", "s = sum(r['x'] for r in t)", [("t", "table", "objectlist")], [("s", "number", "number")]),
        step(
            "double",
            "out = {'fields': t['fields'], 'rows': [{'x': 2 * r['x']} for r in t['rows']]}",
            [("t", "table", "rows")],
            [("out", "table", "rows")],
        ),
    ],
    "connections": [
        {"name": "table", "input_step": "double", "input": "t"},
        {"output_step": "double", "output": "out", "input_step": "total", "input": "t"},
        {"output_step": "total", "output": "s", "name": "total"},
        {"output_step": "double", "output": "out", "name": "doubled"},
    ],
}


def test_steps_run_in_dependency_order_with_conversions_between_them():
    result = run(
        WORKFLOW,
        {"table": {"format": "tsv", "data": "x\n1\n2\n"}},
        {"doubled": {"format": "csv"}},
        allow_python_mode=True,
    )

    assert result == {"total": {"format": "json", "data": "6"}, "doubled": {"format": "csv", "data": "x\n2\n4\n"}}


def test_python_steps_are_refused_before_any_step_runs_without_the_setting():
    with pytest.raises(ModeNotAllowed) as info:
        run(WORKFLOW, {"table": {"format": "csv", "data": "x\n1\n"}})

    assert str(info.value).startswith("workflow step 'double': the task has mode 'python', which runs code")


def test_a_failing_step_is_named():
    broken = {
        **WORKFLOW,
        "steps": [
            WORKFLOW["steps"][0],
            step("double", "out = 1", [("t", "table", "rows")], [("out", "table", "rows")]),
        ],
    }

    with pytest.raises(InvalidData, match=r"^workflow step 'double': output 'out' is not of type table in format rows"):
        run(broken, {"table": {"format": "csv", "data": "x\n1\n"}}, allow_python_mode=True)


def with_connections(*connections: dict) -> dict:
    return {**WORKFLOW, "connections": list(connections)}


FEED = {"name": "table", "input_step": "double", "input": "t"}
CHAIN = {"output_step": "double", "output": "out", "input_step": "total", "input": "t"}
OUT_TOTAL = {"output_step": "total", "output": "s", "name": "total"}
OUT_DOUBLED = {"output_step": "double", "output": "out", "name": "doubled"}


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ({**WORKFLOW, "steps": []}, "a workflow needs 'steps', a list of"),
        ({**WORKFLOW, "steps": [{"name": "x"}]}, "step #1 needs a 'name' and a 'task' object"),
        ({**WORKFLOW, "steps": WORKFLOW["steps"] * 2}, "two steps are named 'total'"),
        (with_connections(FEED, CHAIN, OUT_TOTAL), "output 'doubled' is connected to no step's output"),
        (
            with_connections(FEED, CHAIN, OUT_TOTAL, {**OUT_DOUBLED, "output_step": "triple"}),
            "connection #4 names no step 'triple'",
        ),
        (
            with_connections(FEED, CHAIN, OUT_TOTAL, {**OUT_DOUBLED, "output": "o"}),
            "step 'double' has no output 'o'; its outputs are 'out'",
        ),
        (
            with_connections({**FEED, "name": "tabel"}, CHAIN, OUT_TOTAL, OUT_DOUBLED),
            "task 'sum of doubles' has no input 'tabel'; its inputs are 'table'",
        ),
        (
            with_connections(FEED, CHAIN, OUT_TOTAL, OUT_DOUBLED, {**FEED, "input_step": "total"}),
            "connection #5: input 't' of step 'total' is connected twice",
        ),
        (
            with_connections(FEED, CHAIN, OUT_TOTAL, OUT_DOUBLED, {"input_step": "total", "input": "t"}),
            "connection #5 has neither 'output_step' and 'output' nor a workflow input 'name'",
        ),
        (
            with_connections(FEED, CHAIN, OUT_TOTAL, OUT_DOUBLED, {"output_step": "total", "output": "s"}),
            "connection #5 connects to nothing",
        ),
        (
            with_connections(
                CHAIN,
                OUT_TOTAL,
                OUT_DOUBLED,
                {"output_step": "total", "output": "s", "input_step": "double", "input": "t"},
            ),
            "steps 'double', 'total' wait for each other",
        ),
    ],
)
def test_malformed_workflows_say_what_is_wrong(task, problem):
    with pytest.raises(InvalidSpec) as info:
        run(task, {"table": {"format": "csv", "data": "x\n1\n"}}, allow_python_mode=True)
    assert problem in str(info.value)


def test_an_unconnected_step_input_takes_its_default():
    task = {
        "mode": "workflow",
        "outputs": [{"name": "y", "type": "integer", "format": "integer"}],
        "steps": [
            {
                "name": "inc",
                "task": {
                    "script": "y = x + 1",
                    "inputs": [{"name": "x", "type": "integer", "format": "integer", "default": 41}],
                    "outputs": [{"name": "y", "type": "integer", "format": "integer"}],
                },
            }
        ],
        "connections": [{"output_step": "inc", "output": "y", "name": "y"}],
    }

    assert run(task, allow_python_mode=True) == {"y": {"format": "integer", "data": 42}}

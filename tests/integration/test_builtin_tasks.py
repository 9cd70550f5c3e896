"""The built-in tasks girder_worker.run, convert and validators on real workers.

A client publishes through the broker; a real ``girder-worker`` process runs them.
"""

from __future__ import annotations

import pytest

from girder_worker.analysis import ModeNotAllowed

from .conftest import purge_queue

BUILTIN = ("girder_worker.convert", "girder_worker.run", "girder_worker.validators")

WORKFLOW = {
    "name": "count and double",
    "mode": "workflow",
    "inputs": [{"name": "table", "type": "table", "format": "rows"}],
    "outputs": [
        {"name": "doubled", "type": "table", "format": "objectlist"},
        {"name": "n", "type": "integer", "format": "integer"},
    ],
    "steps": [
        {
            "name": "count",
            "task": {
                "mode": "python",
                "script": "n = len(rows)",
                "inputs": [{"name": "rows", "type": "table", "format": "objectlist"}],
                "outputs": [{"name": "n", "type": "integer", "format": "integer"}],
            },
        },
        {
            "name": "double",
            "task": {
                "mode": "python",
                "script": "doubled = [{k: 2 * v for k, v in row.items()} for row in rows]",
                "inputs": [{"name": "rows", "type": "table", "format": "objectlist"}],
                "outputs": [{"name": "doubled", "type": "table", "format": "objectlist"}],
            },
        },
    ],
    "connections": [
        {"name": "table", "input_step": "count", "input": "rows"},
        {"name": "table", "input_step": "double", "input": "rows"},
        {"output_step": "double", "output": "doubled", "name": "doubled"},
        {"output_step": "count", "output": "n", "name": "n"},
    ],
}


def test_convert_and_validators_through_the_broker(broker, env_for, start_worker, client_app, unique_queue):
    env = env_for(broker)
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, plugins=())
    for name in BUILTIN:
        assert f"  . {name}\n" in worker.log
    app = client_app(env)
    try:
        converted = app.send_task(
            "girder_worker.convert",
            ["table", {"format": "csv", "data": "a,b\n1,2\n"}, {"format": "rows"}],
            queue=unique_queue,
        )
        found = app.send_task("girder_worker.validators", ["tree", None], queue=unique_queue)

        assert converted.get(timeout=60) == {
            "format": "rows",
            "data": {"fields": ["a", "b"], "rows": [{"a": 1, "b": 2}]},
        }
        assert [(v["type"], v["format"]) for v in found.get(timeout=60)] == [
            ("tree", "nested"),
            ("tree", "nested.json"),
            ("tree", "newick"),
        ]
    finally:
        purge_queue(app, unique_queue)


def test_run_a_workflow_on_a_worker_that_allows_python(env_for, start_worker, client_app):
    env = env_for("embedded")
    start_worker({**env, "GIRDER_WORKER_ALLOW_PYTHON_MODE": "true"}, "-P", "prefork", "-c", "2", plugins=())
    app = client_app(env)

    result = app.send_task(
        "girder_worker.run",
        [WORKFLOW],
        {"inputs": {"table": {"format": "csv", "data": "x,y\n1,2\n3,4\n"}}, "outputs": {"doubled": {"format": "csv"}}},
    )

    assert result.get(timeout=60) == {
        "doubled": {"format": "csv", "data": "x,y\n2,4\n6,8\n"},
        "n": {"format": "integer", "data": 2},
    }


def test_python_mode_is_refused_by_a_worker_without_the_setting(env_for, start_worker, client_app):
    env = env_for("embedded")
    start_worker(env, "-P", "solo", plugins=())
    app = client_app(env)

    result = app.send_task("girder_worker.run", [WORKFLOW], {"inputs": {"table": {"format": "csv", "data": "x\n1\n"}}})

    with pytest.raises(ModeNotAllowed) as info:
        result.get(timeout=60)
    assert str(info.value) == (
        "workflow step 'count': the task has mode 'python', which runs code taken from the message, and this "
        "worker does not allow it; set GIRDER_WORKER_ALLOW_PYTHON_MODE=true in the worker's environment to allow it"
    )

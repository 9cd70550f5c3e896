"""The "Built-in analysis tasks" page: its examples run and print what it shows, its
format table is the registry's, and the messages it quotes are the ones users get."""

from __future__ import annotations

import json
import re

import pytest

from girder_worker.analysis import (
    InvalidData,
    InvalidSpec,
    MissingInput,
    ModeNotAllowed,
    NoConversionPath,
    UnknownBinding,
    UnknownFormat,
    UnknownMode,
    new_registry,
    run,
)

from ..conftest import broker_env
from .test_examples import DOCS, EXAMPLES

PAGE = DOCS / "builtin.rst"


def documented(name: str) -> tuple[str, str]:
    """A shown console session: its ``$ python ...`` command and its output."""
    command, _, output = (EXAMPLES / name).read_text().partition("\n")
    return command, output


@pytest.mark.parametrize("example", ["builtin_convert.py", "analysis_plugin.py"])
def test_example_prints_what_the_page_shows(run, example):
    command, output = documented(example.replace(".py", "_output.txt"))

    result = run(str(EXAMPLES / example))

    assert command == f"$ python {example}"
    assert result.returncode == 0, result.stderr
    assert result.stdout == output


def test_the_plugin_class_extends_the_registry_the_tasks_use(monkeypatch, tmp_path):
    import girder_worker.analysis
    from girder_worker._app import create_app
    from girder_worker._config import read_config

    registry = new_registry()
    monkeypatch.setattr(girder_worker.analysis, "registry", registry)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import analysis_plugin

    app = create_app(read_config({"GIRDER_WORKER_DATA_DIR": str(tmp_path)}))
    try:
        assert analysis_plugin.MarkdownPlugin(app).task_imports() == []
    finally:
        app.close()
    assert [c.source for c in registry.conversion_path("table", "csv", "markdown")] == ["csv", "rows"]
    assert registry.mode("template").name == "template"


def test_client_example_runs_the_workflow_on_a_worker(run, start_worker, tmp_path):
    command, output = documented("builtin_client_output.txt")
    env = broker_env("embedded", tmp_path / "data")
    start_worker({**env, "GIRDER_WORKER_ALLOW_PYTHON_MODE": "true"}, "-P", "solo", plugins=())

    result = run(str(EXAMPLES / "builtin_client.py"), env=env)

    assert command == "$ python builtin_client.py"
    assert result.returncode == 0, result.stderr
    assert result.stdout == output
    assert json.loads((EXAMPLES / "analysis_workflow.json").read_text())["mode"] == "workflow"


def test_the_format_table_is_generated_from_the_registry(monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    from analysis_formats import table_lines

    registry = new_registry()
    text = "\n".join(table_lines(registry))

    assert ".. analysis-formats::" in PAGE.read_text()
    for fmt in registry.formats():
        assert f"   * - ``{fmt.type}``\n     - ``{fmt.format}``\n" in text
    assert text.count("   * - ``") == len(registry.formats())


def test_the_safety_message_is_quoted_as_users_get_it():
    task = {"name": "append_tables", "mode": "python", "script": "c = 1"}

    with pytest.raises(ModeNotAllowed) as info:
        run(task)

    assert f"\n   {info.value}\n" in PAGE.read_text()


APPEND = {
    "name": "x",
    "script": "c = a",
    "inputs": [
        {"name": "a", "type": "table", "format": "objectlist"},
        {"name": "b", "type": "table", "format": "csv"},
    ],
    "outputs": [{"name": "c", "type": "table", "format": "objectlist"}],
}
B = {"data": "a\n1\n"}
# How to get each error the page quotes: (exception, spec, inputs, outputs)
ERRORS = {
    "InvalidSpec": (InvalidSpec, APPEND, {"a": {"data": []}, "b": B}, {"d": {}}),
    "MissingInput": (MissingInput, APPEND, {"b": B}, None),
    "InvalidData": (InvalidData, APPEND, {"a": {"data": []}, "b": {"data": [1]}}, None),
    "NoConversionPath": (
        NoConversionPath,
        APPEND,
        {"a": {"data": []}, "b": {"format": "column.names", "data": []}},
        None,
    ),
    "UnknownFormat": (UnknownFormat, APPEND, {"a": {"format": "xls", "data": ""}, "b": B}, None),
    "UnknownMode": (UnknownMode, {"mode": "r"}, {}, None),
    "UnknownBinding": (UnknownBinding, APPEND, {"a": {"url": "ftp://host/a"}, "b": B}, None),
}


def test_the_quoted_error_messages_are_the_real_ones():
    rows = re.findall(r"   \* - ``(\w+)``\n     - ``(.+?)``\n", PAGE.read_text(), re.DOTALL)
    quoted = {name: " ".join(text.split()) for name, text in rows if name in ERRORS}
    assert set(quoted) == set(ERRORS)

    for name, (exception, task, inputs, outputs) in ERRORS.items():
        with pytest.raises(exception) as info:
            run(task, inputs, outputs, allow_python_mode=True)
        message = quoted[name].removesuffix(", ...")
        assert str(info.value).startswith(message), name


def test_the_page_is_in_the_table_of_contents():
    assert re.search(r"^   builtin$", (DOCS / "index.rst").read_text(), re.MULTILINE)

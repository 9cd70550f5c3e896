"""girder_worker.analysis.run: bindings, defaults, checks, conversion and the python mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from girder_worker.analysis import (
    AnalysisError,
    BindingNotAllowed,
    InvalidData,
    InvalidSpec,
    MissingInput,
    ModeNotAllowed,
    UnknownBinding,
    UnknownFormat,
    UnknownMode,
    convert,
    run,
)
from girder_worker_utils import JobStatus, TaskCancelled

from ..http_endpoint import http_endpoint_fixture  # noqa: F401  (the http_endpoint fixture)

APPEND = {
    "name": "append_tables",
    "mode": "python",
    "script": "c = a + b",
    "inputs": [
        {"name": "a", "type": "table", "format": "objectlist"},
        {"name": "b", "type": "table", "format": "objectlist"},
    ],
    "outputs": [{"name": "c", "type": "table", "format": "objectlist"}],
}
A = {"format": "objectlist", "data": [{"aa": 1, "bb": 2}]}
B = {"format": "csv", "data": "aa,bb\n3,4\n"}


def python(script: str, inputs=(), outputs=(), **fields) -> dict:
    def ports(values):
        return [dict(zip(("name", "type", "format"), v, strict=False)) for v in values]

    return {"mode": "python", "script": script, "inputs": ports(inputs), "outputs": ports(outputs), **fields}


class Recorder:
    """Records what a run reports to its Girder job (the real one needs a Girder)."""

    def __init__(self) -> None:
        self.statuses: list[JobStatus] = []
        self.progress: list[tuple] = []

    def updateStatus(self, status):
        self.statuses.append(JobStatus(status))

    def updateProgress(self, total=None, current=None, message=None, forceFlush=False):  # noqa: N803
        self.progress.append((current, total, message))


def test_the_originals_example_client_spec_runs():
    result = run(APPEND, {"a": A, "b": B}, {"c": {"format": "objectlist.json"}}, allow_python_mode=True)

    assert result == {"c": {"format": "objectlist.json", "data": '[{"aa": 1, "bb": 2}, {"aa": 3, "bb": 4}]'}}


def test_python_mode_is_refused_unless_allowed_before_anything_is_fetched(http_endpoint):
    url = http_endpoint.serve("/a.json", b"[]")

    with pytest.raises(ModeNotAllowed) as info:
        run(APPEND, {"a": {"url": url, "format": "objectlist.json"}, "b": B})

    assert str(info.value) == (
        "task 'append_tables' has mode 'python', which runs code taken from the message, and this worker "
        "does not allow it; set GIRDER_WORKER_ALLOW_PYTHON_MODE=true in the worker's environment to allow it"
    )
    assert http_endpoint.received == []


def test_every_declared_output_is_returned_inline_in_its_format_unless_bound():
    task = python("x = 1\ny = 'two'", outputs=[("x", "integer", "integer"), ("y", "string", "text")])

    assert run(task, allow_python_mode=True) == {
        "x": {"format": "integer", "data": 1},
        "y": {"format": "text", "data": "two"},
    }


def test_missing_inputs_are_named_with_their_types_and_the_inputs_given():
    with pytest.raises(MissingInput) as info:
        run(APPEND, {"aa": A}, allow_python_mode=True)

    assert str(info.value) == (
        "task 'append_tables': required input 'a' (table/objectlist), 'b' (table/objectlist) has no binding "
        "and no default; the inputs given that task 'append_tables' does not declare are 'aa'"
    )


def test_defaults_may_be_values_or_bindings():
    task = python(
        "s = f'{n} {t}'",
        outputs=[("s", "string", "text")],
        inputs=[],
    )
    task["inputs"] = [
        {"name": "n", "type": "integer", "format": "integer", "default": 3},
        {"name": "t", "type": "table", "format": "rows", "default": {"format": "csv", "data": "a\n1\n"}},
    ]

    result = run(task, allow_python_mode=True)

    assert result["s"]["data"] == "3 {'fields': ['a'], 'rows': [{'a': 1}]}"


def test_an_input_not_of_its_declared_type_and_format_is_named():
    with pytest.raises(InvalidData, match=r"^input 'b' is not of type table in format csv: expected a str, got list$"):
        run(APPEND, {"a": A, "b": {"format": "csv", "data": [1]}}, allow_python_mode=True)
    with pytest.raises(InvalidData, match=r"^output 'c' is not of type table in format objectlist: item 0 is a int"):
        run({**APPEND, "script": "c = [1]"}, {"a": A, "b": B}, allow_python_mode=True)


def test_without_validation_bad_data_goes_through():
    task = {**APPEND, "script": "c = 'not a table'"}

    result = run(task, {"a": A, "b": A}, validate=False, allow_python_mode=True)

    assert result == {"c": {"format": "objectlist", "data": "not a table"}}


def test_auto_convert_off_requires_the_declared_format():
    with pytest.raises(InvalidData, match=r"^input 'b' is in format csv and is wanted in table/objectlist, but auto"):
        run(APPEND, {"a": A, "b": B}, auto_convert=False, allow_python_mode=True)


def test_unknown_things_are_named_with_what_exists():
    with pytest.raises(UnknownMode, match=r"^unknown mode 'r'; this worker runs modes python, workflow \(a plugin"):
        run({"mode": "r"})
    with pytest.raises(
        UnknownBinding, match=r"^input 'a': unknown binding mode 'ftp'; input bindings are girder, http"
    ):
        run(APPEND, {"a": {"url": "ftp://host/a.csv", "format": "csv"}, "b": B}, allow_python_mode=True)
    with pytest.raises(UnknownFormat, match=r"^input 'a': unknown format table/xls; table has formats column.names"):
        run(APPEND, {"a": {"format": "xls", "data": ""}, "b": B}, allow_python_mode=True)
    with pytest.raises(InvalidSpec, match=r"^task 'append_tables' has no output 'd' to bind; its outputs are 'c'$"):
        run(APPEND, {"a": A, "b": B}, {"d": {"format": "csv"}}, allow_python_mode=True)


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ([], "the task spec must be an object (a dict), got list"),
        ({"inputs": {}}, "the task: inputs must be a list, got dict"),
        ({"inputs": [{"type": "table"}]}, "the task: input #1 has no 'id' or 'name'"),
        ({"outputs": [{"id": "x"}, {"name": "x"}]}, "the task: two outputs are named 'x'"),
        ({"inputs": [{"id": "x", "target": "disk"}]}, "target 'disk'; use 'memory' or 'filepath'"),
        ({"mode": 1}, "the task: 'mode' must be a string, got int"),
    ],
)
def test_malformed_specs_say_what_is_wrong(task, problem):
    with pytest.raises(InvalidSpec) as info:
        run(task)
    assert problem in str(info.value)


def test_a_script_that_sets_no_output_is_named():
    with pytest.raises(AnalysisError, match=r"^the task: the script did not set 'y'$"):
        run(python("x = 1", outputs=[("y",)]), allow_python_mode=True)


def test_filepath_inputs_and_outputs_live_in_a_temporary_directory_removed_afterwards():
    task = {
        "mode": "python",
        "script": (
            "from pathlib import Path\n"
            "seen = [str(Path(t).parent) == _tempdir, Path(t).read_text()]\n"
            "out = Path(_tempdir, 'out.csv')\n"
            "out.write_text('n\\n7\\n')\n"
            "where = _tempdir\n"
        ),
        "inputs": [{"name": "t", "type": "table", "format": "csv", "target": "filepath"}],
        "outputs": [
            {"name": "seen", "type": "object", "format": "object"},
            {"name": "out", "type": "table", "format": "csv", "target": "filepath"},
            {"name": "where", "type": "string", "format": "text"},
        ],
    }

    result = run(
        task,
        {"t": {"format": "rows", "data": {"fields": ["a"], "rows": [{"a": 1}]}}},
        {"out": {"format": "objectlist"}},
        allow_python_mode=True,
    )

    assert result["seen"]["data"] == [True, "a\n1\n"]
    assert result["out"] == {"format": "objectlist", "data": [{"n": 7}]}
    assert not Path(result["where"]["data"]).exists()


def test_cleanup_false_keeps_the_temporary_directory():
    result = run(python("d = _tempdir", outputs=[("d", "string", "text")]), allow_python_mode=True, cleanup=False)

    kept = Path(result["d"]["data"])
    assert kept.is_dir()
    kept.rmdir()


def test_an_output_with_target_filepath_must_name_a_file():
    task = {
        "script": "f = '/no/such/file'",
        "outputs": [{"name": "f", "type": "string", "format": "text", "target": "filepath"}],
    }

    with pytest.raises(AnalysisError, match=r"^output 'f' has target 'filepath', but its value '/no/such/file' names"):
        run(task, allow_python_mode=True)


def test_local_bindings_read_and_write_files(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("aa,bb\n5,6\n")
    target = tmp_path / "out.json"
    allowed = {"local_paths": [str(tmp_path)], "allow_python_mode": True}

    result = run(
        APPEND,
        {"a": A, "b": {"mode": "local", "path": str(source), "format": "csv"}},
        {"c": {"url": target.as_uri(), "format": "rows.json"}},
        **allowed,
    )

    assert result == {"c": {"url": target.as_uri(), "format": "rows.json"}}
    assert json.loads(target.read_text()) == {
        "fields": ["aa", "bb"],
        "rows": [{"aa": 1, "bb": 2}, {"aa": 5, "bb": 6}],
    }
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(AnalysisError, match=rf"^input 'b': there is no file '{missing}' on this worker$"):
        run(APPEND, {"a": A, "b": {"mode": "local", "path": str(missing)}}, **allowed)
    no_dir = tmp_path / "no" / "dir"
    with pytest.raises(AnalysisError, match=rf"^output 'c': the directory '{no_dir}' does not exist on this worker$"):
        run(APPEND, {"a": A, "b": A}, {"c": {"mode": "local", "path": str(no_dir / "x")}}, **allowed)


def test_local_bindings_are_refused_without_local_paths(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("aa,bb\n5,6\n")

    for binding in ({"mode": "local", "path": str(source)}, {"url": source.as_uri()}):
        with pytest.raises(BindingNotAllowed) as info:
            run(APPEND, {"a": A, "b": {**binding, "format": "csv"}}, allow_python_mode=True)
        assert str(info.value) == (
            "input 'b': local bindings and file:// URLs read and write files on the worker, and this worker allows "
            "no directory for them; set GIRDER_WORKER_LOCAL_PATHS in the worker's environment to the directories "
            "they may use to allow them"
        )


def test_local_bindings_stay_in_their_directories(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "secret.csv").write_text("s\n1\n")
    (allowed / "escape.csv").symlink_to(tmp_path / "secret.csv")
    (allowed / "out.csv").symlink_to(tmp_path / "written.csv")
    limits = {"local_paths": [str(allowed)], "allow_python_mode": True}

    for path, says in (
        ("/proc/self/environ", "is outside the directories GIRDER_WORKER_LOCAL_PATHS allows"),
        (f"{allowed}/../secret.csv", "is not an absolute path without '..'"),
        ("secret.csv", "is not an absolute path without '..'"),
        (str(allowed / "escape.csv"), "is outside the directories GIRDER_WORKER_LOCAL_PATHS allows"),
    ):
        with pytest.raises(BindingNotAllowed, match=re.escape(says)):
            run(APPEND, {"a": A, "b": {"mode": "local", "path": path, "format": "csv"}}, **limits)
    with pytest.raises(BindingNotAllowed, match="is outside the directories GIRDER_WORKER_LOCAL_PATHS allows"):
        run(APPEND, {"a": A, "b": A}, {"c": {"mode": "local", "path": str(allowed / "out.csv")}}, **limits)
    assert not (tmp_path / "written.csv").exists()


def test_http_bindings_fetch_and_push(http_endpoint):
    url = http_endpoint.serve("/b.csv", b"aa,bb\n7,8\n")

    result = run(
        APPEND,
        {"a": A, "b": {"url": url, "format": "csv", "params": {"v": "1"}, "headers": {"X-Key": "k"}}},
        {"c": {"url": http_endpoint.url + "/put", "method": "PUT", "format": "csv", "headers": {"X-Key": "k"}}},
        allow_python_mode=True,
    )

    get, put = http_endpoint.received
    assert (get.method, get.path, get.headers["X-Key"]) == ("GET", "/b.csv?v=1", "k")
    assert (put.method, put.path, put.body) == ("PUT", "/put", b"aa,bb\n1,2\n7,8\n")
    assert result == {"c": {"url": http_endpoint.url + "/put", "method": "PUT", "format": "csv"}}  # headers left out


def test_http_failures_are_named_without_the_query(http_endpoint):
    with pytest.raises(AnalysisError, match=r"^input 'b': GET http://127.0.0.1:\d+/missing answered HTTP 404"):
        run(APPEND, {"a": A, "b": {"url": http_endpoint.url + "/missing?token=secret"}}, allow_python_mode=True)
    url = http_endpoint.serve("/big", b"x" * 1000)
    with pytest.raises(
        AnalysisError,
        match=r"^input 'b': http://127.0.0.1:\d+/big sends 1,000 bytes, more than maxSize \(10\); nothing was read$",
    ):
        run(APPEND, {"a": A, "b": {"url": url, "maxSize": 10}}, allow_python_mode=True)
    with pytest.raises(
        AnalysisError,
        match=r"^input 'b': http://127.0.0.1:\d+/big sends 1,000 bytes, more than GIRDER_WORKER_MAX_DATA_BYTES \(999\)",
    ):
        run(APPEND, {"a": A, "b": {"url": url}}, allow_python_mode=True, max_data_bytes=999)


def test_http_bindings_use_only_the_methods_their_direction_needs(http_endpoint):
    url = http_endpoint.serve("/b.csv", b"aa,bb\n7,8\n")

    for method in ("DELETE", "POST", "PATCH"):
        with pytest.raises(
            BindingNotAllowed, match=rf"^input 'b': http method '{method}' is not used for an input; inputs use GET$"
        ):
            run(APPEND, {"a": A, "b": {"url": url, "method": method, "format": "csv"}}, allow_python_mode=True)
    for method in ("DELETE", "GET"):
        with pytest.raises(
            BindingNotAllowed,
            match=rf"^output 'c': http method '{method}' is not used for an output; outputs use POST or PUT$",
        ):
            run(APPEND, {"a": A, "b": A}, {"c": {"url": url, "method": method}}, allow_python_mode=True)
    assert http_endpoint.received == []


def test_http_bindings_reach_only_the_allowed_hosts(http_endpoint):
    url = http_endpoint.serve("/b.csv", b"aa,bb\n7,8\n")
    hosts = {"http_allowed_hosts": ["data.example.org", "*.example.net"], "allow_python_mode": True}

    with pytest.raises(BindingNotAllowed) as info:
        run(APPEND, {"a": A, "b": {"url": url + "?token=secret", "format": "csv"}}, **hosts)
    assert str(info.value) == (
        f"input 'b': host '127.0.0.1' of {url} is not in GIRDER_WORKER_HTTP_ALLOWED_HOSTS (*.example.net, "
        "data.example.org); add it there in the worker's environment to allow it"
    )
    with pytest.raises(BindingNotAllowed, match=r"^output 'c': host '127.0.0.1' of http://127.0.0.1:\d+/put is not in"):
        run(APPEND, {"a": A, "b": A}, {"c": {"url": http_endpoint.url + "/put"}}, **hosts)
    assert http_endpoint.received == []

    result = run(
        APPEND, {"a": A, "b": {"url": url, "format": "csv"}}, allow_python_mode=True, http_allowed_hosts=["127.0.0.1"]
    )
    assert result["c"]["data"][-1] == {"aa": 7, "bb": 8}


def test_statuses_and_progress_follow_the_stages(http_endpoint):
    url = http_endpoint.serve("/b.csv", b"aa,bb\n7,8\n")
    job = Recorder()

    run(
        APPEND,
        {"a": A, "b": {"url": url, "format": "csv"}},
        {"c": {"url": http_endpoint.url + "/put", "format": "csv"}},
        allow_python_mode=True,
        job_manager=job,
    )

    # CONVERTING_INPUT is a dead end in Girder's tables (only ERROR may follow): not reported.
    assert job.statuses == [
        JobStatus.FETCHING_INPUT,
        JobStatus.RUNNING,
        JobStatus.CONVERTING_OUTPUT,
        JobStatus.PUSHING_OUTPUT,
    ]
    assert job.progress == [
        (0, 4, "reading input 'a'"),
        (1, 4, "fetching input 'b'"),
        (None, None, "converting input 'b' from csv to objectlist"),
        (2, 4, "running task 'append_tables' (python)"),
        (3, 4, "pushing output 'c'"),
        (None, None, "converting output 'c' from objectlist to csv"),
        (None, None, "pushing output 'c'"),
        (4, 4, "done"),
    ]


def test_a_run_that_fails_while_fetching_goes_back_to_running(http_endpoint):
    job = Recorder()

    with pytest.raises(AnalysisError):
        run(APPEND, {"a": A, "b": {"url": http_endpoint.url + "/no"}}, allow_python_mode=True, job_manager=job)

    assert job.statuses == [JobStatus.FETCHING_INPUT, JobStatus.RUNNING]


def test_a_cancelled_run_stops_between_stages():
    calls = []

    def check_cancelled():
        calls.append(1)
        if len(calls) > 1:
            raise TaskCancelled("cancelled")

    with pytest.raises(TaskCancelled):
        run(
            {**APPEND, "script": "raise AssertionError('ran')"},
            {"a": A, "b": B},
            allow_python_mode=True,
            check_cancelled=check_cancelled,
        )


def test_convert_fetches_converts_and_pushes(http_endpoint, tmp_path):
    url = http_endpoint.serve("/t.tsv", b"x\ty\n1\t2\n")
    target = tmp_path / "t.jsonl"
    job = Recorder()

    result = convert(
        "table",
        {"url": url, "format": "tsv"},
        {"path": str(target), "mode": "local", "format": "jsonlines"},
        job_manager=job,
        local_paths=[tmp_path],
    )

    assert result == {"path": str(target), "mode": "local", "format": "jsonlines"}
    assert target.read_text() == '{"x": 1, "y": 2}\n'
    assert job.statuses == [
        JobStatus.FETCHING_INPUT,
        JobStatus.RUNNING,
        JobStatus.CONVERTING_OUTPUT,
        JobStatus.PUSHING_OUTPUT,
    ]
    with pytest.raises(InvalidSpec, match=r"^the input binding has no 'format'; say which table format"):
        convert("table", {"data": "a\n"}, {"format": "rows"})
    with pytest.raises(InvalidData, match=r"^the input is not of type integer in format json: not valid JSON"):
        convert("integer", {"format": "json", "data": "x"}, {"format": "integer"})
    assert convert("integer", {"format": "json", "data": "x"}, {}, validate=False) == {"format": "json", "data": "x"}


def test_a_girder_binding_to_another_origin_gets_no_token_of_the_message(http_endpoint):
    elsewhere = {"mode": "girder", "api_url": http_endpoint.url + "/api/v1", "id": "0123456789abcdef01234567"}

    with pytest.raises(AnalysisError):
        convert(
            "string",
            {**elsewhere, "format": "text"},
            {"format": "text"},
            girder_api_url="http://girder.example:8080/api/v1",
            girder_token="the-message-token",
        )

    assert http_endpoint.received, "the binding's api_url was called"
    sent = [request.headers for request in http_endpoint.received]
    assert all("the-message-token" not in str(headers) for headers in sent), sent

"""The transform protocol: arguments transformed before a run, cleanup after it,
result hooks on the return value, exception() on a failure."""

from __future__ import annotations

from typing import Any

import celery
import pytest

from girder_worker_utils import Task
from girder_worker_utils._transforms_run import TransformRun, model_repr, walk
from girder_worker_utils.transform import ResultTransform, Transform
from girder_worker_utils.transforms.common import TemporaryDirectory


class Twice(Transform):
    def __init__(self, value: Any, events: list[str]) -> None:
        self.value = value
        self.events = events

    def transform(self) -> Any:
        self.events.append(f"transform {self.value}")
        return self.value * 2

    def cleanup(self) -> None:
        self.events.append(f"cleanup {self.value}")

    def _repr_model_(self) -> str:
        return f"Twice({self.value})"


class Tag(ResultTransform):
    def __init__(self, tag: str, events: list[str]) -> None:
        self.tag = tag
        self.events = events

    def transform(self, data: Any) -> str:
        return f"{self.tag}:{data}"

    def exception(self) -> None:
        self.events.append(f"exception {self.tag}")

    def cleanup(self) -> None:
        self.events.append(f"cleanup {self.tag}")


@pytest.fixture
def app() -> Any:
    app = celery.Celery("transforms", task_cls=Task, set_as_current=False)
    app.conf.task_always_eager = True
    return app


def test_transforms_are_found_in_nested_arguments_and_cleaned_up_after_the_run(app: Any) -> None:
    events: list[str] = []

    @app.task
    def total(numbers, extra):
        events.append("run")
        return numbers[0] + numbers[1] + numbers[2][0] + extra["n"][0]

    result = total.apply(([Twice(1, events), 2, (Twice(3, events),)],), {"extra": {"n": [Twice(10, events)]}})

    assert result.get() == 2 + 2 + 6 + 20
    assert events[:3] == ["transform 1", "transform 3", "transform 10"]
    assert events[3] == "run"
    assert sorted(events[4:]) == ["cleanup 1", "cleanup 10", "cleanup 3"]


def test_cleanup_runs_when_the_task_fails(app: Any) -> None:
    events: list[str] = []

    @app.task
    def broken(value):
        raise ValueError(f"no {value}")

    result = broken.apply((Twice(4, events),))

    assert result.state == "FAILURE"
    assert "no 8" in str(result.result)
    assert events == ["transform 4", "cleanup 4"]


def test_a_temporary_directory_exists_during_the_run_and_is_gone_after(app: Any) -> None:
    import os

    seen: list[str] = []

    @app.task
    def use(path):
        seen.append(path)
        assert os.path.isdir(path)
        return "ok"

    assert use.apply((TemporaryDirectory(),)).get() == "ok"
    assert not os.path.exists(seen[0])


def test_result_hooks_follow_the_returned_tuple_by_position() -> None:
    events: list[str] = []
    run = TransformRun([Tag("a", events), Tag("b", events)])

    assert run.result(("x", "y", "z")) == ("a:x", "b:y", "z")
    assert run.result("single") == "a:single"
    run.cleanup()
    assert events == ["cleanup a", "cleanup b"]


def test_a_failure_calls_each_hooks_exception_and_a_failing_cleanup_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    class BadCleanup(Tag):
        def cleanup(self) -> None:
            raise OSError("disk gone")

    run = TransformRun([BadCleanup("a", events), Tag("b", events)])
    run.failed()
    run.cleanup()

    assert events == ["exception a", "exception b", "cleanup b"]
    assert "BadCleanup.cleanup() failed; the run's outcome stands" in caplog.text


def test_hooks_in_the_original_wire_format_are_restored() -> None:
    hooks = [{"py/object": "tests.utils.test_transforms.Tag", "tag": "t", "events": []}]
    run = TransformRun(hooks)
    assert run.result(5) == "t:5"


def test_walk_and_model_repr_are_the_originals_helpers() -> None:
    events: list[str] = []
    args = [Twice(1, events), {"k": (Twice(2, events), "plain")}]

    assert walk(args, model_repr) == ["Twice(1)", {"k": ("Twice(2)", "plain")}]
    assert walk([1, (2, 3)], lambda v: v + 1) == [2, (3, 4)]
    assert walk({"a": [1]}, len, leaf_condition=lambda v: isinstance(v, list)) == {"a": 1}

"""The Task base and the task decorator, on plain Celery apps (no girder-worker core)."""

from __future__ import annotations

import celery
import pytest

from girder_worker_utils import GirderWorkerPluginABC, JobStatus, PluginTask, Task, TaskCancelled, task
from girder_worker_utils.worker import REFUSAL_ATTR


def eager_app(name: str) -> celery.Celery:
    app = celery.Celery(name, set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    return app


def test_cancelled_is_false_outside_a_running_task():
    app = eager_app("outside")

    @app.task(base=Task, bind=True, shared=False)
    def noop(self):
        return None

    assert noop.cancelled is False
    assert noop.canceled is False
    noop.check_cancelled()  # does not raise


def test_a_recursive_task_runs_as_plain_calls_and_sees_the_callers_request():
    app = eager_app("recursive")
    seen_ids = set()

    @app.task(base=Task, bind=True, shared=False)
    def countdown(self, n):
        seen_ids.add(self.request.id)
        return 0 if n == 0 else 1 + countdown(n - 1)

    result = countdown.apply(args=(50,))
    assert result.get() == 50
    assert seen_ids == {result.id}


@pytest.mark.parametrize(
    ("refusal", "state"),
    [(celery.exceptions.Ignore("a duplicate"), "IGNORED"), (ValueError("past its limit"), "FAILURE")],
)
def test_a_run_the_worker_refused_ends_with_the_refusal_before_its_body_begins(refusal, state):
    app = celery.Celery("refused", set_as_current=False)
    ran = []

    @app.task(base=Task, bind=True, shared=False)
    def body(self):
        ran.append(self.request.id)

    def refuse(task=None, **kwargs):  # what a worker's admission does, from the same signal
        if task.name == body.name:
            task.request.__dict__[REFUSAL_ATTR] = refusal

    celery.signals.task_prerun.connect(refuse, weak=False)
    try:
        result = body.apply()
    finally:
        celery.signals.task_prerun.disconnect(refuse)
    assert ran == []
    assert result.state == state
    assert result.result is refusal or state == "IGNORED"
    assert body.apply().state == "SUCCESS"  # the next run, not refused, runs


def test_a_task_raising_task_cancelled_carries_its_reason():
    with pytest.raises(TaskCancelled, match="user asked"):
        raise TaskCancelled("user asked")


def test_plugin_task_binds_to_whichever_app_is_current():
    @task(name="utils_test.double")
    def double(x):
        return 2 * x

    assert isinstance(double, PluginTask)
    first, second = eager_app("first"), eager_app("second")
    for app in (first, second):
        app.set_current()
        assert double.app is app
        assert double.name == "utils_test.double"
        assert isinstance(app.tasks["utils_test.double"], Task)
        assert double.delay(21).get() == 42
    assert double(4) == 8


def test_plugin_task_called_inside_another_task_runs_in_that_tasks_app():
    @task(name="utils_test.fib")
    def fib(n):
        return 1 if n < 3 else fib(n - 1) + fib(n - 2)

    app = eager_app("fib")
    app.set_current()
    assert fib.delay(20).get() == 6765


def test_task_decorator_rejects_positional_options():
    with pytest.raises(TypeError, match="takes the function alone"):
        task("name")


def test_job_status_values_match_girder():
    assert [int(s) for s in JobStatus] == [0, 1, 2, 3, 4, 5, 820, 821, 822, 823, 824]
    assert JobStatus.CANCELED.is_final
    assert not JobStatus.CANCELING.is_final


def test_plugin_interface_task_imports_defaults_to_none_as_in_the_original():
    class SignalsOnly(GirderWorkerPluginABC):  # large_image's Girder 5 worker plugin is one
        pass

    assert SignalsOnly(object()).task_imports() == []

    class Complete(GirderWorkerPluginABC):
        def task_imports(self):
            return ["x.tasks"]

    app = object()
    plugin = Complete(app)
    assert plugin.app is app
    assert plugin.task_imports() == ["x.tasks"]

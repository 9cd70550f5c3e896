"""How a run's cancel flag carries a time limit, and what a task reads of it."""

from __future__ import annotations

import celery

from girder_worker_utils import CancelFlag, Task


def test_a_soft_limit_sets_the_flag_once_with_its_reason_and_runs_the_callbacks():
    flag = CancelFlag()
    calls = []
    flag.add_callback(lambda: calls.append("cleanup"))

    flag.set("soft time limit (2 s) exceeded", time_limit="soft")
    flag.set("cancelled")  # a later cancel changes nothing

    assert flag.is_set()
    assert (flag.reason, flag.time_limit) == ("soft time limit (2 s) exceeded", "soft")
    assert calls == ["cleanup"]


def test_a_hard_limit_replaces_an_earlier_reason_without_running_callbacks_again():
    flag = CancelFlag()
    calls = []
    flag.add_callback(lambda: calls.append("cleanup"))
    flag.set("cancelled")

    flag.set("hard time limit (4 s) exceeded", time_limit="hard")

    assert (flag.reason, flag.time_limit) == ("hard time limit (4 s) exceeded", "hard")
    assert calls == ["cleanup"]


def test_a_users_cancel_has_no_time_limit():
    flag = CancelFlag()
    flag.set("cancelled in Girder")
    assert (flag.reason, flag.time_limit) == ("cancelled in Girder", None)


def test_cancel_reason_is_none_outside_a_run_and_while_not_cancelled():
    app = celery.Celery("reason", set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)

    @app.task(base=Task, bind=True, shared=False)
    def reads(self):
        return self.cancel_reason

    assert reads.cancel_reason is None
    assert reads.apply().get() is None

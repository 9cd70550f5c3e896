"""JobStatus: Girder's numbers and transition tables, and the task's Girder surface."""

from __future__ import annotations

import pytest
from celery import Celery

from girder_worker_utils import TRANSITIONS, JobStatus, Task
from girder_worker_utils._job import move_girder_options

S = JobStatus

# The tables of girder-jobs 5.0.21 and girder-plugin-worker 5.0.21, target <- allowed
# previous, as the contract (shared/reference/girder-jobs-contract.md) lists them.
CONTRACT = {
    "worker_handler": {
        S.QUEUED: {0},
        S.RUNNING: {1, 820},
        S.SUCCESS: {2, 823},
        S.ERROR: {820, 821, 822, 823, 824, 1, 2},
        S.CANCELED: {824, 1, 2},
        S.CANCELING: {0, 1, 2},
        S.FETCHING_INPUT: {2},
        S.CONVERTING_INPUT: {2, 820},
        S.CONVERTING_OUTPUT: {2},
        S.PUSHING_OUTPUT: {2, 822},
        S.INACTIVE: set(),
    },
    "celery_handler": {
        S.QUEUED: {0},
        S.RUNNING: {0, 1, 820},
        S.SUCCESS: {2, 823},
        S.ERROR: {820, 821, 822, 823, 824, 1, 2},
        S.CANCELED: {824, 0, 1, 2},
        S.CANCELING: {0, 1, 2},
        S.FETCHING_INPUT: {2},
        S.CONVERTING_INPUT: {2, 820},
        S.CONVERTING_OUTPUT: {2},
        S.PUSHING_OUTPUT: {2, 822},
        S.INACTIVE: set(),
    },
    None: {
        S.QUEUED: {0},
        S.RUNNING: {1, 0},
        S.SUCCESS: {2},
        S.ERROR: {1, 2},
        S.CANCELED: {0, 1, 2},
        S.CANCELING: set(),
        S.FETCHING_INPUT: set(),
        S.INACTIVE: set(),
    },
}


def test_the_numbers_are_girders():
    assert [int(s) for s in S] == [0, 1, 2, 3, 4, 5, 820, 821, 822, 823, 824]
    assert {s for s in S if s.is_final} == {S.SUCCESS, S.ERROR, S.CANCELED}


@pytest.mark.parametrize("handler", ["worker_handler", "celery_handler", None])
def test_the_tables_are_the_contracts(handler):
    for target, previous in CONTRACT[handler].items():
        assert S.allowed_previous(target, handler) == previous, (handler, target.name)
    assert set(TRANSITIONS[handler]) <= set(CONTRACT[handler])


def test_an_unknown_handler_uses_the_table_of_girder_jobs():
    assert S.allowed_previous(S.CANCELED, "my_handler") == {0, 1, 2}


def test_can_transition():
    assert S.can_transition(S.QUEUED, S.RUNNING, "worker_handler")
    assert not S.can_transition(S.INACTIVE, S.RUNNING, "worker_handler")
    assert S.can_transition(S.INACTIVE, S.RUNNING, "celery_handler")
    assert not S.can_transition(S.CANCELING, S.SUCCESS, "worker_handler")
    assert S.can_transition(S.SUCCESS, S.SUCCESS)  # no change is always accepted


def test_transition_path_finds_the_shortest_way():
    assert S.transition_path(S.INACTIVE, S.SUCCESS, "worker_handler") == [S.QUEUED, S.RUNNING, S.SUCCESS]
    assert S.transition_path(S.INACTIVE, S.SUCCESS, "celery_handler") == [S.RUNNING, S.SUCCESS]
    assert S.transition_path(S.RUNNING, S.RUNNING) == []
    assert S.transition_path(S.SUCCESS, S.RUNNING, "worker_handler") is None
    assert S.transition_path(S.INACTIVE, S.CANCELING) is None


def test_girder_options_leave_the_callers_kwargs_alone():
    kwargs = {"x": 1, "girder_job_title": "t"}
    options = {"girder_api_url": "http://g/api/v1", "headers": {"h": 1}}

    remaining = move_girder_options(kwargs, options)

    assert remaining == {"x": 1}
    assert kwargs == {"x": 1, "girder_job_title": "t"}
    assert options == {"headers": {"h": 1, "girder_job_title": "t", "girder_api_url": "http://g/api/v1"}}


def test_without_a_girder_job_the_girder_surface_is_quiet():
    app = Celery("status-test", set_as_current=False, task_cls=Task)
    app.conf.task_always_eager = True

    @app.task(bind=True, shared=False)
    def probe(self):
        self.progress(1, total=2, message="half")  # no job: nothing to do, no error
        return self.job_manager, self.girder_client

    assert probe.apply().get() == (None, None)

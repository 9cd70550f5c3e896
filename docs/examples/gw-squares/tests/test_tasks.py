from girder_worker.testing import Progress
from girder_worker_utils import JobStatus

from gw_squares.tasks import square_values


def test_square_values_squares_the_values(gw_eager_app):
    result = square_values.delay([1, 2, 3])

    assert result.get() == [1, 4, 9]
    job = gw_eager_app.job(result)
    assert job.progress[0] == Progress(current=0, total=3, message="value 1 of 3")
    assert job.progress[-1] == Progress(current=3, total=3, message="done")


def test_a_worker_runs_square_values(gw_worker):
    result = gw_worker.delay(square_values, [1, 2, 3])

    assert result.get(timeout=60) == [1, 4, 9]
    job = gw_worker.job(result)
    assert job.status == JobStatus.SUCCESS
    assert job.progress[-1] == Progress(current=3, total=3, message="done")
    assert job.log == "squaring 1\nsquaring 2\nsquaring 3\n"


def test_square_values_stops_when_cancelled(gw_worker):
    result = gw_worker.delay(square_values, list(range(1000)), seconds_per_value=0.05)
    gw_worker.job(result, until=lambda job: job.progress)  # it is running

    gw_worker.cancel(result)

    job = gw_worker.job(result)
    assert job.status == JobStatus.CANCELED
    assert "cancelled after" in job.log
    assert result.state == "REVOKED"

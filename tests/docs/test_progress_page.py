"""The progress example of the Girder page, with a real worker and a real client."""

from __future__ import annotations

from ..conftest import broker_env
from .test_examples import DOCS, EXAMPLES


def test_a_client_follows_the_progress_of_the_example_task(run, start_worker, tmp_path):
    env = {**broker_env("embedded", tmp_path / "data"), "PYTHONPATH": str(EXAMPLES)}
    start_worker(env, "-P", "prefork", "-c", "1", "--include", "progress_tasks", plugins=())

    result = run(str(EXAMPLES / "progress_client.py"), env=env)

    assert result.returncode == 0, result.stderr
    # 30 reports in 3 s, written at most twice a second: a handful of them, the first at once.
    assert result.stdout == (
        "SUCCESS 30\nprogress updates seen: True\nfirst: {'current': 1, 'total': 30, 'message': 'item 1 of 30'}\n"
    )
    assert "\n   SUCCESS 30\n   progress updates seen: True\n" in (DOCS / "girder.rst").read_text()

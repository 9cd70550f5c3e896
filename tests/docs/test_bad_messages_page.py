"""The "Bad messages" page: its example prints what the page shows, and the log lines
it quotes are the ones the worker's checks make."""

from __future__ import annotations

import re

from celery import Celery

from girder_worker.broker._message_checks import Rejection, check_arguments, check_body, check_headers, check_size

from .test_examples import DOCS, EXAMPLES

PAGE = DOCS / "bad-messages.rst"


def page_text() -> str:
    """The page with its line breaks and indentation folded into single spaces."""
    return " ".join(PAGE.read_text().split())


def line(rejection: Rejection | None) -> str:
    assert rejection is not None
    return f"{rejection.problem}; the message was discarded ({rejection.fix})"


def test_the_example_prints_what_the_page_shows(run):
    result = run(str(EXAMPLES / "oversized_message.py"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "oversized_message_output.txt").read_text()
    assert "more than GIRDER_WORKER_MAX_MESSAGE_BYTES (1,048,576); nothing was sent" in result.stdout


def test_the_quoted_lines_are_the_real_ones():
    app = Celery(set_as_current=False)

    @app.task(name="gwtest.add", shared=False)  # shared, it would join every app made after
    def add(x, y):
        return x + y

    text = page_text()
    assert line(check_body({"x": 1})) in text
    assert line(check_size(b"x" * 65_557, 65_536)) in text
    assert line(check_arguments(app.tasks["gwtest.add"], [1, 2, 3], {}, {})) in text
    assert check_headers({"task": "gwtest.add"}).problem in text
    assert check_body([5, {}, None]).problem in text
    assert check_body([[], [], None]).problem in text
    assert line(check_headers({"task": "gwtest.add", "id": "1", "girder_worker_started": True})) in text


def test_the_page_is_in_the_table_of_contents():
    assert re.search(r"^   bad-messages$", (DOCS / "index.rst").read_text(), re.MULTILINE)

"""The worker log's filter: what an operator sees of tokens, names and ids."""

from __future__ import annotations

import io
import logging

import pytest

from girder_worker.monitoring._log_filter import NAME_LIMIT, SecretFilter, redact, redact_exception, remember_secret

TOKEN = "tok3nThatMustNeverBeLogged"


@pytest.fixture
def shown():
    """``shown(logger_name, msg, *args, exc_info=...)``: the text a filtered handler writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(SecretFilter())
    logger = logging.getLogger("gwtest.log_filter")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)

    def show(msg, *args, **kwargs):
        stream.seek(0)
        stream.truncate()
        logger.debug(msg, *args, **kwargs)
        return stream.getvalue()

    yield show
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [
        f"GET http://girder/api/v1/file/5/download?token={TOKEN}&offset=0",
        f"{{'jobInfoSpec': {{'url': 'http://g/job/1', 'headers': {{'Girder-Token': '{TOKEN}'}}}}}}",
        f"'girder_client_token': '{TOKEN}', 'girder_api_url': 'http://g/api/v1'",
        f'{{"Girder-Token": "{TOKEN}"}}',
        f"Girder-Token: {TOKEN}",
        f"amqp://guest:{TOKEN}@rabbit//",
    ],
)
def test_tokens_are_masked_wherever_they_are_printed(shown, text):
    line = shown("TaskPool: Apply %s", text)

    assert TOKEN not in line
    assert "***" in line


def test_a_token_seen_in_a_message_is_masked_in_any_form():
    remember_secret(TOKEN)

    assert redact(f"the token was {TOKEN}.") == "the token was ***."


def test_celerys_task_lines_escape_names_and_ids(shown):
    # Celery's "Task %(name)s[%(id)s] received" gets its fields as a dict.
    line = shown("Task %(name)s[%(id)s] received", {"name": "x\nERROR forged line", "id": "1\r2"})

    assert line == "DEBUG Task x\\nERROR forged line[1\\r2] received\n"


def test_a_name_and_id_printed_as_name_id_are_escaped_and_cut(shown):
    line = shown("Discarding revoked task: %s[%s]", "n" * 100_000 + "\nforged", "id\n")

    assert line.count("\n") == 1
    assert len(line) < NAME_LIMIT * 2 + 100
    assert "more characters]" in line
    assert line.endswith("[id\\n]\n")


def test_a_100_kb_line_is_cut_but_a_multi_line_message_keeps_its_lines(shown):
    assert len(shown("%s", "y" * 100_000)) < 5000
    assert shown("first\n%s", "second") == "DEBUG first\nsecond\n"


def test_a_traceback_shows_no_token(shown):
    try:
        raise ValueError(f"404 Client Error: Not Found for url: http://g/api/v1/item?token={TOKEN}")
    except ValueError:
        line = shown("task failed", exc_info=True)

    assert "Traceback (most recent call last)" in line
    assert "for url: http://g/api/v1/item?token=***" in line
    assert TOKEN not in line


def test_an_exception_can_be_cleaned_in_place():
    try:
        try:
            raise OSError(f"http://g/x?token={TOKEN}")
        except OSError as inner:
            raise RuntimeError(f"download of http://g/x?token={TOKEN} failed") from inner
    except RuntimeError as exc:
        raised = exc
    redact_exception(raised)

    assert TOKEN not in str(raised)
    assert TOKEN not in str(raised.__cause__)

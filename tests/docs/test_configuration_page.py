"""The configuration page documents exactly the variables girder-worker reads."""

from __future__ import annotations

import re

from girder_worker._config import VARIABLES

from ..conftest import ROOT

DOCS = ROOT / "docs"
PAGE = DOCS / "configuration.rst"

# A row of the page's list-table starts with the variable: "   * - ``GIRDER_WORKER_X``".
ROW = re.compile(r"^\s*\* - ``(GIRDER_WORKER_[A-Z0-9_]+)``\s*$", re.MULTILINE)
MENTION = re.compile(r"\bGIRDER_WORKER_[A-Z0-9_]*[A-Z0-9]\b")


def test_every_variable_has_a_row():
    rows = ROW.findall(PAGE.read_text())

    missing = sorted(set(VARIABLES) - set(rows))
    assert not missing, f"configuration.rst has no table row for {', '.join(missing)}"
    assert sorted(rows) == sorted(set(rows)), "a variable has two rows"


def test_no_page_documents_a_variable_girder_worker_does_not_read():
    for page in sorted(DOCS.glob("*.rst")):
        unknown = sorted(set(MENTION.findall(page.read_text())) - set(VARIABLES))
        assert not unknown, f"{page.name} documents {', '.join(unknown)}, which are not in VARIABLES"


def test_invalid_configuration_is_reported_as_documented(run):
    result = run("-m", "girder_worker", "-l", "info", env={"GIRDER_WORKER_LOGGING_LEVEL": "loud"})

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line == (
        "girder-worker: error: GIRDER_WORKER_LOGGING_LEVEL: unknown level 'loud'; "
        "use one of debug, info, warning, error, critical"
    )
    assert line in PAGE.read_text()

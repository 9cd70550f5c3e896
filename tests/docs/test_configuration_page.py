"""The configuration page documents exactly the variables girder-worker reads."""

from __future__ import annotations

import ast
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


# Shown on the configuration page as the misspelling girder-worker warns about.
TYPOS = {"GIRDER_WORKER_BROKR"}


def test_no_page_documents_a_variable_girder_worker_does_not_read():
    for page in sorted(DOCS.glob("*.rst")):
        unknown = sorted(set(MENTION.findall(page.read_text())) - set(VARIABLES) - TYPOS)
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


SOURCES = sorted(
    path
    for package in (ROOT / "packages").iterdir()
    for path in (package / "src").rglob("*.py")
    if "templates" not in path.relative_to(package).parts  # the plugin template's Jinja files
)
NAME = re.compile(r"GIRDER_WORKER_[A-Z0-9_]*[A-Z0-9]")


def variables_read_by_the_code() -> dict[str, list[str]]:
    """Each GIRDER_WORKER_* name the code passes to a call or a subscript, with where.

    That is how the code reads a variable: ``os.environ.get("GIRDER_WORKER_X")``,
    ``env["GIRDER_WORKER_X"]``, ``os.getenv(...)``, ``_flag(env, "GIRDER_WORKER_X")``,
    and how it names one in an error (``ConfigError("GIRDER_WORKER_X", ...)``).
    """
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                candidates = [*node.args, *(k.value for k in node.keywords)]
            elif isinstance(node, ast.Subscript):
                candidates = [node.slice]
            else:
                continue
            for arg in candidates:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and NAME.fullmatch(arg.value):
                    found.setdefault(arg.value, []).append(f"{path.relative_to(ROOT)}:{arg.lineno}")
    return found


def test_the_scan_finds_the_reads_it_is_meant_to_find():
    read = variables_read_by_the_code()

    assert "GIRDER_WORKER_BROKER" in read  # env.get("GIRDER_WORKER_BROKER", "")
    assert "GIRDER_WORKER_STRICT_PLUGINS" in read  # _flag(env, "GIRDER_WORKER_STRICT_PLUGINS")


def test_every_variable_the_code_reads_is_in_variables():
    unlisted = {name: where for name, where in variables_read_by_the_code().items() if name not in VARIABLES}

    assert not unlisted, f"the code reads variables that VARIABLES (and so the docs) leave out: {unlisted}"


def test_every_variable_in_variables_is_read_by_the_code():
    unread = sorted(set(VARIABLES) - set(variables_read_by_the_code()))

    assert not unread, f"VARIABLES lists {', '.join(unread)}, which no code reads"


# A line of the embedded broker's data directory layout: "   leases/    which worker ...".
LAYOUT_LINE = re.compile(r"^   ([a-z/]+/) {2,}", re.MULTILINE)


def test_the_data_directory_is_laid_out_as_the_page_shows(tmp_path):
    from girder_worker._config import embedded_settings
    from girder_worker.delivery._leases import SqliteLeaseStore

    text = PAGE.read_text()
    layout = text[text.index("under the data directory") :]
    layout = layout[: layout.index("The broker is a kombu transport")]
    data = tmp_path / "data"
    embedded_settings(data)  # what a worker or client makes at start
    SqliteLeaseStore(data / "leases").claim("t1", "w@h/1", {"body": "[]"})  # a worker's first lease

    shown = set(LAYOUT_LINE.findall(layout))
    made = {f"{p.relative_to(data)}/" for p in data.rglob("*") if p.is_dir()}
    assert shown == made - {"broker/"}, (shown, made)
    database = re.search(r"one SQLite database, (\S+)", layout)
    assert database is not None
    assert (data / "leases" / database[1]).is_file()

"""The transforms page's example runs and prints what the page shows."""

from __future__ import annotations

import re

from ..conftest import ROOT

DOCS = ROOT / "docs"


def test_the_transforms_example_prints_what_the_page_shows(run):
    result = run(str(DOCS / "examples" / "transforms_example.py"))

    assert result.returncode == 0, result.stderr
    page = (DOCS / "transforms.rst").read_text()
    shown = re.search(r"prints:\n\n\.\. code-block:: text\n\n((?:   .*\n)+)", page)
    assert shown is not None
    assert result.stdout == "".join(line[3:] + "\n" for line in shown.group(1).splitlines())

"""Sphinx directive ``.. analysis-formats::``: the built-in types and formats, read
from girder-worker's analysis registry when the docs are built, so the table never
drifts from the code."""

from __future__ import annotations

import json
import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

_MARKUP = re.compile(r"([\\*`|_])")


def _text(value: str) -> str:
    return _MARKUP.sub(r"\\\1", value)


def table_lines(registry: Any) -> list[str]:
    """The reStructuredText list-table of every format in ``registry``."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 9 14 32 30 15",
        "",
        "   * - Type",
        "     - Format",
        "     - Data",
        "     - Example (as JSON)",
        "     - Converts to",
    ]
    for fmt, targets in registry.describe():
        lines += [
            f"   * - ``{fmt.type}``",
            f"     - ``{fmt.format}``",
            f"     - {_text(fmt.description)}",
            f"     - ``{json.dumps(fmt.example)}``",
            f"     - {', '.join(f'``{t}``' for t in targets) or '(nothing)'}",
        ]
    return lines


class AnalysisFormats(SphinxDirective):
    """Renders :func:`table_lines` for the built-in registry."""

    def run(self) -> list[nodes.Node]:
        from girder_worker.analysis import new_registry

        container = nodes.container()
        self.state.nested_parse(StringList(table_lines(new_registry())), self.content_offset, container)
        return list(container.children)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("analysis-formats", AnalysisFormats)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

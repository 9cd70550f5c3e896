"""Write each ``NAME.inv`` intersphinx inventory here from its plain-text ``NAME.txt``.

The build machine has no internet, so the inventories of Celery's and Python's
documentation live in the repository, cut down to the objects our pages refer to.
A ``.txt`` holds ``# Project:`` and ``# Version:`` lines, comments, and one object a
line in the inventory's own format. After editing one, run::

    python docs/_inventories/build.py
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def entries(source: str) -> tuple[dict[str, str], list[str]]:
    """The ``# Key: value`` header fields and the object lines of an inventory source."""
    header: dict[str, str] = {}
    lines: list[str] = []
    for line in source.splitlines():
        if line.startswith("# "):
            key, colon, value = line[2:].partition(": ")
            if colon and key in ("Project", "Version"):
                header[key] = value
        elif line.strip():
            lines.append(line.strip())
    return header, lines


def render(source: str) -> bytes:
    """The ``objects.inv`` (version 2) bytes of an inventory source."""
    header, lines = entries(source)
    head = (
        "# Sphinx inventory version 2\n"
        f"# Project: {header['Project']}\n"
        f"# Version: {header['Version']}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    return head.encode() + zlib.compress("".join(f"{line}\n" for line in lines).encode(), 9)


def main() -> None:
    for source in sorted(HERE.glob("*.txt")):
        source.with_suffix(".inv").write_bytes(render(source.read_text(encoding="utf-8")))
        print(f"wrote {source.with_suffix('.inv').relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()

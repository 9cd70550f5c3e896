"""Sphinx configuration for the girder-worker documentation."""

from __future__ import annotations

import ast
import atexit
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Intersphinx inventories kept in the repository: the build machine has no internet.
INVENTORIES = ROOT / "docs" / "_inventories"


def _core_version() -> str:
    # Parsed, not imported, so the version is known even before autodoc imports anything.
    about = ROOT / "packages" / "girder-worker-core" / "src" / "girder_worker" / "__about__.py"
    for node in ast.parse(about.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    raise RuntimeError(f"no __version__ = '...' assignment in {about}")


def _isolate_from_the_builders_configuration() -> None:
    # autodoc imports girder_worker.app, which reads GIRDER_WORKER_* and creates the
    # embedded broker's directory. The docs describe the code, not this machine: a
    # broker set in the builder's shell must not change or break the build, and
    # building must not create ~/.local/share/girder-worker.
    for name in [n for n in os.environ if n.startswith("GIRDER_WORKER_")]:
        del os.environ[name]
    data_dir = tempfile.TemporaryDirectory(prefix="girder-worker-docs-")
    atexit.register(data_dir.cleanup)
    os.environ["GIRDER_WORKER_DATA_DIR"] = data_dir.name


_isolate_from_the_builders_configuration()

project = "girder-worker"
author = "girder-worker developers"
copyright = "girder-worker developers"
release = _core_version()
version = ".".join(release.split(".")[:2])

sys.path.insert(0, str(ROOT / "docs" / "_ext"))

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "analysis_formats",  # docs/_ext: the built-in analysis formats table
]

exclude_patterns = ["_build", "examples", "_inventories"]
nitpicky = False

# Links to Celery's and Python's documentation. The inventories list only the objects
# these pages refer to; docs/_inventories/build.py writes them from their .txt sources.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(INVENTORIES / "python.inv")),
    "celery": ("https://docs.celeryq.dev/en/stable", str(INVENTORIES / "celery.inv")),
}

autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"girder-worker {release}"


def setup(app: Any) -> dict[str, Any]:
    # Celery's documentation defines its settings as objects of type "setting", so
    # :setting:`task_routes` links to Celery's page through the inventory.
    app.add_crossref_type("setting", "setting")
    return {"parallel_read_safe": True}

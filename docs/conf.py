"""Sphinx configuration for the girder-worker documentation."""

from __future__ import annotations

import ast
import atexit
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

exclude_patterns = ["_build", "examples"]
nitpicky = False

autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"girder-worker {release}"

"""The ``girder-worker`` command.

``girder-worker [celery worker options]`` runs a Celery worker on
:data:`girder_worker.app.app`; every ``celery worker`` option works.
``girder-worker plugins`` lists the installed plugins and what each loaded;
``girder-worker new-plugin`` creates a plugin package from the cookiecutter template;
``girder-worker --version`` prints the versions of girder-worker's packages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._plugins import PluginReport

__all__ = ["main"]

PROG = "girder-worker"
USAGE = f"""\
usage: {PROG} [--strict-plugins] [celery worker options]
       {PROG} plugins [--strict-plugins]
       {PROG} new-plugin [--output-dir DIR] [--no-input] [NAME=VALUE ...]
       {PROG} --version

Runs a Celery worker on girder_worker.app with every installed plugin's tasks.
--strict-plugins (or GIRDER_WORKER_STRICT_PLUGINS=true) makes a plugin that fails
to load stop the worker. The celery worker options follow.
"""


def _versions() -> str:
    lines = []
    for dist in ("girder-worker-core", "girder-worker-utils", "gwexample", "celery", "kombu"):
        try:
            lines.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            lines.append(f"{dist} (not installed)")
    return "\n".join(lines)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _plugins_table(reports: Sequence[PluginReport]) -> str:
    if not reports:
        return "no plugins installed (entry point group girder_worker_plugins)"
    out = []
    for r in reports:
        out.append(f"{r.name}")
        out.append(f"  entry point:  {r.entry_point}")
        out.append(f"  distribution: {r.distribution or '?'} {r.version or ''}".rstrip())
        if r.loaded:
            out.append(f"  modules:      {', '.join(r.modules) or '(none)'}")
            out.append(f"  tasks:        {', '.join(r.tasks) or '(none)'}")
        else:
            out.append(f"  error:        {r.error}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args[:1]:
        print(_versions())
        return 0
    if args[:1] == ["new-plugin"]:  # reads no configuration: it starts nothing
        from ._new_plugin import main as new_plugin

        return new_plugin(args[1:], prog=PROG)
    strict = "--strict-plugins" in args
    args = [a for a in args if a != "--strict-plugins"]

    from ._config import ConfigError

    try:
        from .app import app
    except ConfigError as exc:
        return _fail(str(exc), 2)

    from ._plugins import PluginLoadError

    app.strict_plugins = app.strict_plugins or strict
    if args[:1] == ["plugins"]:
        app.strict_plugins = False
        reports = app.load_plugins()
        print(_plugins_table(reports))
        failed = any(not r.loaded for r in reports)
        return 1 if failed and (strict or app.girder_worker_config.strict_plugins) else 0

    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
    else:
        try:
            app.load_plugins()
        except PluginLoadError as exc:
            for report in exc.reports:
                print(f"{PROG}: error: {report.error_line()}", file=sys.stderr)
            return _fail("strict plugin loading is on, so the worker does not start", 1)

    from celery.bin.celery import celery

    celery.params[0].default = app
    try:
        celery.main(args=["worker", *args], prog_name=PROG)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

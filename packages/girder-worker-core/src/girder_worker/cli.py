"""The ``girder-worker`` command.

``girder-worker [celery worker options]`` (or ``girder-worker worker [options]``)
runs a Celery worker on :data:`girder_worker.app.app`; every ``celery worker``
option works. ``girder-worker status`` shows the workers that answer;
``girder-worker inspect|control|events|purge|...`` are Celery's own commands on
girder-worker's app, so nobody types ``-A girder_worker.app``;
``girder-worker plugins`` lists the installed plugins and what each loaded;
``girder-worker new-plugin`` creates a plugin package; ``girder-worker --version``
prints the versions of girder-worker's packages and of the installed plugins.

Only a first argument that is a bare word (not an option) names a command, so
``girder-worker -l info -P solo`` runs a worker as it always has.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._hints import closest

if TYPE_CHECKING:
    from ._plugins import PluginReport

__all__ = ["main"]

PROG = "girder-worker"
APP = "girder_worker.app"

#: girder-worker's own commands.
OWN_COMMANDS = {
    "worker": "run a worker (the default: `girder-worker [options]` is `girder-worker worker [options]`)",
    "status": "the workers that answer, their plugins and running tasks, and the queues' depths",
    "plugins": "list the installed plugins and what each loaded",
    "new-plugin": "create a plugin package from the template",
}
#: Celery's commands, run on girder-worker's app (``celery -A girder_worker.app COMMAND``).
CELERY_COMMANDS = {
    "inspect": "ask the workers (active, reserved, registered, stats, ping, query_task, plugins, ...)",
    "control": "command the workers (revoke, rate_limit, time_limit, add_consumer, shutdown, ...)",
    "events": "watch the workers' events (--dump prints them; needs workers started with -E)",
    "purge": "delete every waiting task message from the queues",
    "result": "print the result of a task by id",
    "call": "send a task by name",
    "shell": "a Python shell with the app loaded",
    "report": "Celery's bug-report information about this installation",
    "flower": "Flower, the web monitor (needs `pip install flower`)",
}
COMMANDS = {**OWN_COMMANDS, **CELERY_COMMANDS}

USAGE = f"""\
usage: {PROG} [--strict-plugins] [celery worker options]
       {PROG} worker [--strict-plugins] [celery worker options]
       {PROG} status [--timeout SECONDS]
       {PROG} plugins [--strict-plugins]
       {PROG} new-plugin [--output-dir DIR] [--no-input] [NAME=VALUE ...]
       {PROG} {{{",".join(CELERY_COMMANDS)}}} [options]
       {PROG} --version

Runs a Celery worker on girder_worker.app with every installed plugin's tasks.
--strict-plugins (or GIRDER_WORKER_STRICT_PLUGINS=true) makes a plugin that fails
to load stop the worker. `{PROG} COMMAND --help` describes a command.
"""


def _commands_help() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in OWN_COMMANDS.items()]
    lines += [f"  {name:<{width}}  {text}" for name, text in CELERY_COMMANDS.items()]
    return "\n".join(lines)


def _variables_help() -> str:
    from ._config import VARIABLES  # read now: other modules add to the one table

    lines = ["environment variables (see the configuration page of the documentation):"]
    for name, text in VARIABLES.items():
        lines.append(f"  {name}")
        lines += textwrap.wrap(text, width=88, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _versions() -> str:
    lines = []
    for dist in ("girder-worker-core", "girder-worker-utils", "gwexample", "celery", "kombu"):
        try:
            lines.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            lines.append(f"{dist} (not installed)")
    from ._plugins import ENTRY_POINT_GROUP, discover  # finds entry points; imports no plugin

    found = discover()
    lines.append(f"plugins (entry point group {ENTRY_POINT_GROUP}):" if found else "plugins: none installed")
    for ep in found:
        source = f"{ep.dist.metadata['Name']} {ep.dist.version}" if ep.dist is not None else "unknown distribution"
        lines.append(f"  {ep.name} = {ep.value} ({source})")
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


def _load_app() -> Any:
    """The app, or ``None`` after one error line when the configuration is invalid."""
    from ._config import ConfigError

    try:
        from .app import app
    except ConfigError as exc:
        _fail(str(exc), 2)
        return None
    return app


def _exit_status(exc: SystemExit) -> int:
    """The exit status a command's ``SystemExit`` carries (click and argparse end with one)."""
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _celery(args: list[str]) -> int:
    """Run Celery's command line on girder-worker's app, as ``celery -A girder_worker.app ARGS``."""
    from celery.bin.celery import celery

    try:
        celery.main(args=["-A", APP, *args], prog_name=PROG)
    except SystemExit as exc:
        return _exit_status(exc)
    return 0


def _unknown(word: str) -> int:
    close = closest(word, COMMANDS)
    hint = f" (did you mean {close!r}?)" if close else ""
    return _fail(
        f"unknown command {word!r}{hint}; the commands are {', '.join(COMMANDS)}, "
        f"and options without a command run a worker (see {PROG} --help)",
        2,
    )


def _plugins(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} plugins",
        description="Load the installed plugins as a worker start does, and print what each loaded "
        "or why it failed. Starts no worker and sends nothing to the broker.",
    )
    parser.add_argument("--strict-plugins", action="store_true", help="exit with status 1 if a plugin failed")
    options = parser.parse_args(args)
    app = _load_app()
    if app is None:
        return 2
    app.strict_plugins = False
    reports = app.load_plugins()
    print(_plugins_table(reports))
    failed = any(not r.loaded for r in reports)
    return 1 if failed and (options.strict_plugins or app.girder_worker_config.strict_plugins) else 0


def _status(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} status",
        description="Print the workers that answer on the configured broker, each one's plugins and running "
        "tasks, and how many messages wait in each queue they consume. Exit status 1 when no worker answers.",
    )
    parser.add_argument(
        "--timeout", type=float, default=1.0, metavar="SECONDS", help="how long to wait for answers (default 1)"
    )
    options = parser.parse_args(args)
    app = _load_app()
    if app is None:
        return 2
    from .monitoring._status import status

    return status(app, options.timeout, sys.stdout, sys.stderr, prog=PROG)


def _worker(args: list[str]) -> int:
    strict = "--strict-plugins" in args
    args = [a for a in args if a != "--strict-plugins"]
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print(_commands_help() + "\n")
        print(_variables_help() + "\n")
        print("The celery worker options follow.\n")
        return 2 if _load_app() is None else _celery(["worker", *args])

    app = _load_app()
    if app is None:
        return 2
    from ._plugins import PluginLoadError

    app.strict_plugins = app.strict_plugins or strict
    try:
        app.load_plugins()
    except PluginLoadError as exc:
        for report in exc.reports:
            print(f"{PROG}: error: {report.error_line()}", file=sys.stderr)
        return _fail("strict plugin loading is on, so the worker does not start", 1)

    from .broker._startup import wait_for_servers

    status = wait_for_servers(app, sys.stderr, prog=PROG)
    if status is not None:
        return status
    from ._celery_internals import run_worker_command

    try:
        if run_worker_command(app, args, f"{PROG} worker"):
            return 0
    except SystemExit as exc:
        return _exit_status(exc)
    return _celery(["worker", *args])  # an app with user options: Celery's whole command line applies them


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        print(_versions())
        return 0
    if args[:1] == ["--strict-plugins"] and len(args) > 1 and not args[1].startswith("-"):
        args = [args[1], *args[:1], *args[2:]]  # `--strict-plugins plugins` as `plugins --strict-plugins`
    command = args[0] if args and not args[0].startswith("-") else None
    if command is None:
        return _worker(args)
    rest = args[1:]
    if command == "worker":
        return _worker(rest)
    if command == "new-plugin":  # reads no configuration: it starts nothing
        from ._new_plugin import main as new_plugin

        return new_plugin(rest, prog=PROG)
    try:
        if command == "plugins":
            return _plugins(rest)
        if command == "status":
            return _status(rest)
    except SystemExit as exc:  # argparse: --help, or a usage error it printed
        return _exit_status(exc)
    if command not in CELERY_COMMANDS:
        return _unknown(command)
    if command == "flower" and importlib.util.find_spec("flower") is None:
        return _fail(f"Flower is not installed; install it with `pip install flower`, then run `{PROG} flower`", 1)
    if _load_app() is None:
        return 2
    return _celery([command, *rest])


if __name__ == "__main__":
    sys.exit(main())

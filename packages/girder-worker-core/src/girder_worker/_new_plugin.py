"""``girder-worker new-plugin``: a new plugin package, made from the cookiecutter template.

The template ships inside this package (``girder_worker/templates/plugin``);
cookiecutter, an optional dependency (the ``template`` extra), renders it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TEMPLATE", "main"]

#: The cookiecutter template of a plugin package.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "plugin"
INSTALL = 'python -m pip install "girder-worker-core[template]"'


def questions() -> list[str]:
    """The names of the template's questions, in the order it asks them."""
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    return [name for name in context if not name.startswith("_")]


def _parser(prog: str) -> argparse.ArgumentParser:
    names = questions()
    parser = argparse.ArgumentParser(
        prog=f"{prog} new-plugin",
        description="Create a girder-worker plugin package from girder-worker's cookiecutter template: "
        "a plugin class, its entry point, a cancellable task that reports progress, and its tests.",
        epilog=f"The questions: {', '.join(names)}. Example: {prog} new-plugin --no-input "
        "plugin_name=thumbnails task_name=make_thumbnail",
    )
    parser.add_argument(
        "-o", "--output-dir", default=".", metavar="DIR", help="where to create the package's folder (default: .)"
    )
    parser.add_argument(
        "--no-input", action="store_true", help="ask nothing: use NAME=VALUE answers and the defaults for the rest"
    )
    parser.add_argument("answers", nargs="*", metavar="NAME=VALUE", help="answer a question without being asked")
    return parser


def main(argv: Sequence[str], prog: str = "girder-worker") -> int:
    """Run ``girder-worker new-plugin ARGV``; return the exit status."""
    parser = _parser(prog)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    names = questions()
    answers: dict[str, str] = {}
    for item in args.answers:
        name, equals, value = item.partition("=")
        if not equals or name not in names:
            parser.print_usage(sys.stderr)
            return _fail(prog, f"{item!r} is not an answer: use NAME=VALUE with NAME one of {', '.join(names)}", 2)
        answers[name] = value

    try:
        from cookiecutter.exceptions import CookiecutterException  # type: ignore[import-not-found, import-untyped]
        from cookiecutter.main import cookiecutter  # type: ignore[import-not-found, import-untyped]
    except ModuleNotFoundError:
        return _fail(prog, f"new-plugin needs cookiecutter, which is not installed; install it with: {INSTALL}", 1)

    try:
        created = Path(
            cookiecutter(str(TEMPLATE), no_input=args.no_input, extra_context=answers, output_dir=args.output_dir)
        )
    except CookiecutterException as exc:
        return _fail(prog, f"no plugin created: {exc}", 1)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return _fail(prog, "no plugin created: interrupted", 130)

    relative = os.path.relpath(created)
    where = str(created) if relative.startswith("..") else relative
    print(f"Created the plugin package {where}. To test it:\n")
    print(f"  cd {shlex.quote(where)}")
    print('  python -m pip install -e ".[test]"')
    print("  python -m pytest")
    return 0


def _fail(prog: str, message: str, status: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status

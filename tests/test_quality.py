"""The checks a reviewer would run: types (mypy) and lint/format (ruff), as hatch.toml defines them."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import ROOT

SOURCES = ["packages/girder-worker-utils/src", "packages/girder-worker-core/src"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_mypy_finds_no_type_errors():
    result = run("mypy", "--config-file", "mypy.ini", *SOURCES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint_and_format_are_clean():
    lint = run("ruff", "check", "packages", "tests", "docs", "scripts", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "packages", "tests", "docs", "scripts", "bench")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


CORE_SRC = ROOT / "packages/girder-worker-core/src"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_utils_imports(source: str) -> list[tuple[int, str]]:
    """(line, name) of every private girder_worker_utils module or name ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            top, *rest = name.split(".")
            if top == "girder_worker_utils" and any(_private(part) for part in rest):
                found.append((node.lineno, name))
    return found


def test_the_private_import_scan_sees_every_spelling():
    source = (
        "import girder_worker_utils._task\n"
        "from girder_worker_utils._job import JOB_MANAGER_ATTR\n"
        "from girder_worker_utils import _cancel\n"
        "def f():\n"
        "    from girder_worker_utils.transforms import _private_helper\n"
        "from girder_worker_utils import Task, __version__\n"
        "from girder_worker_utils.worker import CANCEL_ATTR\n"
    )
    assert [line for line, _ in private_utils_imports(source)] == [1, 2, 3, 5]


def test_core_imports_only_public_names_from_utils():
    """utils is a contract: core uses its public modules (girder_worker_utils.worker for worker needs)."""
    found = []
    for path in sorted(CORE_SRC.rglob("*.py")):
        relative = path.relative_to(CORE_SRC).as_posix()
        if relative.startswith("girder_worker/templates/"):
            continue  # cookiecutter templates: Jinja, not Python, and a plugin's code, not core's
        imports = private_utils_imports(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(ROOT)}:{line}: imports {name}" for line, name in imports]
    assert not found, "core imports private names of girder_worker_utils; use girder_worker_utils.worker:\n" + (
        "\n".join(found)
    )


# -- private Celery/kombu/billiard/prometheus_client names: only in the two adapter modules ----

UTILS_SRC = ROOT / "packages/girder-worker-utils/src"
CELERY_ADAPTERS = {"girder_worker/_celery_internals.py", "girder_worker_utils/_celery_internals.py"}

#: Private modules and module attributes, by import (each spelling of import or from-import).
PRIVATE_CELERY_IMPORTS = (
    "celery._state",
    "celery.app.defaults._TO_NEW_KEY",
    "celery.worker.state",
    "celery.app.trace.LOG_IGNORED",
    "celery.app.trace.log_policy_ignore",
    "prometheus_client.values",
)

#: Private attributes (and undocumented ones the adapters name), read, written or named to getattr & co.
PRIVATE_CELERY_ATTRIBUTES = frozenset(
    {
        "_message",  # Request
        "_request_dict",
        "_already_revoked",
        "_already_cancelled",
        "_on_ack",
        "time_limits",
        "__self__",  # of the pool's timeout_callback
        "_process_task",  # WorkController
        "_quick_release",
        "_maximum_prefetch_restored",  # Consumer
        "restart_count",
        "event_dispatcher",
        "active_requests",  # celery.worker.state
        "reserved_requests",
        "task_ready",
        "_task_stack",  # celery._state
        "_tls",
        "_set_current_app",
        "_TO_NEW_KEY",  # celery.app.defaults
        "LOG_IGNORED",  # celery.app.trace
        "log_policy_ignore",
        "_conf",  # Celery
        "_brpop_read",  # kombu's Redis channel
        "bindings",  # kombu's virtual BrokerState
        "ValueClass",  # prometheus_client.values
        "MultiProcessValue",
    }
)

#: Celery's Task._app: a private name only on something other than ``self`` (a class of
#: ours may have an ``_app`` of its own, as PluginTask does).
PRIVATE_CELERY_ATTRIBUTES_OF_OTHERS = frozenset({"_app"})

#: Celery and kombu methods that work only because an instance attribute shadows them.
PRIVATE_CELERY_ASSIGNMENTS = frozenset({"on_success", "on_failure", "apply_async", "can_consume"})

#: The two overrides of private methods that must stay in their subclass, each one line into the adapter.
PRIVATE_CELERY_OVERRIDES = {
    ("girder_worker/_worker.py", "_process_task"),
    ("girder_worker/broker/_redis.py", "_brpop_read"),
}

_NAME_CALLS = frozenset({"getattr", "setattr", "hasattr", "delattr", "__setattr__", "__getattribute__", "pop", "get"})
_SHADOWING_CALLS = frozenset({"setattr", "__setattr__", "delattr", "pop"})


def _private_import(name: str) -> bool:
    return any(name == banned or name.startswith(banned + ".") for banned in PRIVATE_CELERY_IMPORTS)


def private_celery_touches(source: str) -> list[tuple[int, str]]:
    """(line, what) of every private Celery/kombu/billiard/prometheus_client name ``source`` touches."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _private_import(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if _private_import(node.module) or _private_import(f"{node.module}.{alias.name}"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Attribute):
            owner_is_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if node.attr in PRIVATE_CELERY_ATTRIBUTES or (
                node.attr in PRIVATE_CELERY_ATTRIBUTES_OF_OTHERS and not owner_is_self
            ):
                found.append((node.lineno, f".{node.attr}"))
            elif node.attr in PRIVATE_CELERY_ASSIGNMENTS and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.append((node.lineno, f".{node.attr} = (shadowing the method per instance)"))
        elif isinstance(node, ast.Call):
            function = node.func
            called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
            if called not in _NAME_CALLS:
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    name = arg.value
                    read = name in PRIVATE_CELERY_ATTRIBUTES or name in PRIVATE_CELERY_ATTRIBUTES_OF_OTHERS
                    shadowed = name in PRIVATE_CELERY_ASSIGNMENTS and called in _SHADOWING_CALLS
                    if read or shadowed:
                        found.append((node.lineno, f"{called}(..., {name!r})"))
    return sorted(found)


def test_the_private_celery_scan_sees_every_spelling():
    source = (
        "from celery._state import get_current_task\n"  # 1
        "from celery import _state\n"  # 2
        "import celery.worker.state as s\n"  # 3
        "from celery.worker import state\n"  # 4
        "from celery.app.defaults import _TO_NEW_KEY, SETTING_KEYS\n"  # 5
        "from prometheus_client import values, CollectorRegistry\n"  # 6
        "x = request._message\n"  # 7
        "y = getattr(worker, '_quick_release', None)\n"  # 8
        "top._app is self._app\n"  # 9: the first only
        "request.on_failure = handler\n"  # 10
        "qos.__dict__.pop('can_consume', None)\n"  # 11
        "return super()._brpop_read(**options)\n"  # 12
        "from celery.app.defaults import SETTING_KEYS\n"  # 13: public
        "request.on_failure(einfo)\n"  # 14: a call, not a replacement
        "self._app = app\n"  # 15: an _app of its own
        "from celery.app import trace\n"  # 16: public module
        "trace.LOG_IGNORED\n"  # 17
    )
    lines = [line for line, _ in private_celery_touches(source.replace("return ", ""))]
    assert lines == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 17]


def test_only_the_adapters_touch_private_celery_names():
    """Private Celery/kombu/billiard/prometheus_client names live in the two ``_celery_internals`` modules."""
    found: list[str] = []
    overrides_seen: set[tuple[str, str]] = set()
    for src in (CORE_SRC, UTILS_SRC):
        for path in sorted(src.rglob("*.py")):
            relative = path.relative_to(src).as_posix()
            if relative in CELERY_ADAPTERS or relative.startswith("girder_worker/templates/"):
                continue
            for line, what in private_celery_touches(path.read_text(encoding="utf-8")):
                override = (relative, what.lstrip("."))
                if override in PRIVATE_CELERY_OVERRIDES:
                    overrides_seen.add(override)
                    continue
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, (
        "private Celery/kombu/billiard/prometheus_client names outside the adapter modules; add a function to "
        "girder_worker._celery_internals (or girder_worker_utils._celery_internals) with a contract test in "
        "tests/compat/test_contracts.py, and call it:\n" + "\n".join(found)
    )
    gone = PRIVATE_CELERY_OVERRIDES - overrides_seen
    assert not gone, f"overrides no longer found; remove them from PRIVATE_CELERY_OVERRIDES: {gone}"

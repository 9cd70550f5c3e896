"""Find girder-worker plugins through entry points and load them one by one.

A plugin that fails is reported, by name, entry point and distribution, and the
others still load; strict mode turns any failure into :class:`PluginLoadError`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ._hints import closest

__all__ = ["ENTRY_POINT_GROUP", "PluginLoadError", "PluginReport", "load_plugins"]

ENTRY_POINT_GROUP = "girder_worker_plugins"

logger = logging.getLogger("girder_worker.plugins")


class PluginLoadError(Exception):
    """One or more plugins failed to load while strict plugin loading was on."""

    def __init__(self, reports: list[PluginReport]) -> None:
        super().__init__("; ".join(report.error_line() for report in reports))
        self.reports = reports


class _Failed(Exception):
    def __init__(self, stage: str, exc: BaseException | str) -> None:
        detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        super().__init__(f"{stage}: {detail}")


@dataclass
class PluginReport:
    """What happened to one discovered plugin."""

    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    modules: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        source = f"{self.distribution} {self.version}" if self.distribution else "an unknown distribution"
        return f"plugin {self.name!r} (entry point {self.entry_point}, from {source})"

    def error_line(self) -> str:
        return (
            f"{self.describe()} {self.error}; fix or uninstall {self.distribution or 'it'}, "
            "or list the plugins to load in GIRDER_WORKER_PLUGINS"
        )


def _report_for(ep: EntryPoint) -> PluginReport:
    dist = ep.dist
    return PluginReport(
        name=ep.name,
        entry_point=f"{ep.name} = {ep.value}",
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
    )


def _load_one(app: Any, ep: EntryPoint, report: PluginReport) -> None:
    try:
        cls = ep.load()
    except Exception as exc:
        raise _Failed("failed to import", exc) from exc
    if not callable(getattr(cls, "task_imports", None)):
        raise _Failed(
            "does not implement the plugin interface",
            f"{ep.value} has no task_imports(); subclass girder_worker_utils.GirderWorkerPluginABC",
        )
    try:
        plugin = cls(app)
    except Exception as exc:
        raise _Failed("failed in its constructor", exc) from exc
    try:
        modules = plugin.task_imports()
    except Exception as exc:
        raise _Failed("failed in task_imports()", exc) from exc
    if isinstance(modules, str) or not all(isinstance(m, str) for m in modules or ()):
        raise _Failed("returned a bad value from task_imports()", f"{modules!r} is not a list of module names")
    report.modules = list(modules or ())
    for module in report.modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise _Failed(f"failed to import its task module {module!r}", exc) from exc


def discover() -> list[EntryPoint]:
    """The installed plugins' entry points, by name, each name once."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def suggest_plugin(name: str, installed: list[EntryPoint]) -> str:
    """`` (did you mean 'x'?)`` for a name in GIRDER_WORKER_PLUGINS that is no plugin's, or ``""``.

    A plugin is named by its entry point, which often differs from its distribution
    (``gw-squares``) and package (``gw_squares``); either finds the plugin it holds,
    and a misspelt plugin name finds the closest one.
    """
    for ep in installed:
        package = ep.value.partition(":")[0].partition(".")[0]
        dist = (ep.dist.metadata["Name"] if ep.dist is not None else None) or ""
        if name == package or (_normal(name) == _normal(package) and _normal(name) != _normal(dist)):
            what = "package"
        elif _normal(name) == _normal(dist):
            what = "distribution"
        else:
            continue
        return f" (did you mean {ep.name!r}? {name!r} is the {what} of plugin {ep.name!r})"
    close = closest(name, (ep.name for ep in installed))
    return f" (did you mean {close!r}?)" if close else ""


def load_plugins(app: Any, only: Collection[str] | None = None, strict: bool = False) -> list[PluginReport]:
    """Construct every installed plugin with ``app`` and import its task modules.

    Args:
        app: the Celery app the plugins configure and register tasks with.
        only: names of the plugins to load; ``None`` loads all of them.
        strict: raise :class:`PluginLoadError` if any plugin fails.

    Returns:
        One report per plugin considered, failed ones included.
    """
    reports = []
    for ep in discover():
        if only is not None and ep.name not in only:
            continue
        report = _report_for(ep)
        try:
            _load_one(app, ep, report)
        except _Failed as failure:
            report.error = str(failure)
            logger.error("%s", report.error_line())
        reports.append(report)
    if only is not None:
        installed = discover()
        for missing in sorted(set(only) - {r.name for r in reports}):
            hint = suggest_plugin(missing, installed)
            report = PluginReport(missing, "(none)", None, None, error=f"is not installed{hint}")
            logger.error(
                "plugin %r named in GIRDER_WORKER_PLUGINS is not installed%s; "
                "install it or remove it from GIRDER_WORKER_PLUGINS",
                missing,
                hint,
            )
            reports.append(report)
    by_module = {m: r for r in reports if r.loaded for m in r.modules}
    for name, task in app.tasks.items():
        owner = by_module.get(getattr(task, "__module__", ""))
        if owner is not None:
            owner.tasks.append(name)
    for report in reports:
        report.tasks.sort()
    failed = [r for r in reports if not r.loaded]
    if strict and failed:
        raise PluginLoadError(failed)
    return reports

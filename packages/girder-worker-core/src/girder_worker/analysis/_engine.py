"""Running an analysis: bind, fetch, check and convert inputs; run the mode; convert
and push outputs.

:func:`run_analysis` does one run in a given :class:`RunContext`; :func:`run`
makes the context (and its temporary directory) first and removes it afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from girder_worker_utils import JobStatus

from ._bindings import as_data, to_bytes
from ._context import BindingContext, RunContext, safe_name
from ._errors import AnalysisError, InvalidData, InvalidSpec, MissingInput, UnknownFormat
from ._limits import MAX_DATA_BYTES, data_limit
from ._registry import Registry
from ._spec import Port, TaskSpec, binding_mode, check_binding, parse_task
from ._status import JobReport

__all__ = ["convert", "run", "run_analysis"]


@contextmanager
def _context(registry: Registry | None, cleanup: bool, **fields: Any) -> Iterator[RunContext]:
    """A run's context with a new temporary directory, removed afterwards unless ``cleanup`` is false."""
    if registry is None:
        from . import registry as default_registry

        registry = default_registry
    check_cancelled = fields.pop("check_cancelled", None)
    if fields.get("local_paths"):
        fields["local_paths"] = tuple(os.path.realpath(p) for p in fields["local_paths"])
    if fields.get("http_allowed_hosts") is not None:
        fields["http_allowed_hosts"] = frozenset(h.lower() for h in fields["http_allowed_hosts"])
    tempdir = Path(tempfile.mkdtemp(prefix="girder-worker-run-"))
    context = RunContext(registry=registry, tempdir=tempdir, **fields)
    if check_cancelled is not None:
        context.check_cancelled = check_cancelled
    try:
        with data_limit(context.max_data_bytes):
            yield context
    finally:
        if cleanup:
            shutil.rmtree(tempdir, ignore_errors=True)


def run(
    task: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    auto_convert: bool = True,
    validate: bool = True,
    *,
    registry: Registry | None = None,
    allow_python_mode: bool = False,
    cleanup: bool = True,
    **fields: Any,
) -> dict[str, dict[str, Any]]:
    """Run the analysis ``task`` on ``inputs``; return ``{output id: binding}``.

    This is what the ``girder_worker.run`` task does, in the calling process. The
    run gets a temporary directory of its own, removed at the end unless
    ``cleanup`` is false; ``python`` mode runs only with ``allow_python_mode``.
    Other keywords are fields of :class:`RunContext` (``job_manager``,
    ``check_cancelled``, ``girder_api_url``, ``girder_token``, ``local_paths``,
    ``http_allowed_hosts``, ``max_data_bytes``): ``local`` bindings work only
    with ``local_paths``, the directories they may use.
    """
    with _context(registry, cleanup, allow_python_mode=allow_python_mode, **fields) as context:
        return run_analysis(task, inputs, outputs, context, auto_convert=auto_convert, validate=validate)


def convert(
    type: str,
    input: Mapping[str, Any],
    output: Mapping[str, Any],
    validate: bool = True,
    *,
    registry: Registry | None = None,
    cleanup: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """Fetch the ``type`` data ``input`` binds, convert it to ``output["format"]`` and push it.

    Both are bindings as :func:`run` takes them; the input's ``format`` is
    required, and an output without one gets the input's. Returns the output
    binding (with ``data`` when it is inline)::

        convert("table", {"format": "csv", "data": "a,b\\n1,2\\n"}, {"format": "rows"})
        # {'format': 'rows', 'data': {'fields': ['a', 'b'], 'rows': [{'a': 1, 'b': 2}]}}
    """
    with _context(registry, cleanup, **fields) as context:
        type = context.registry.canonical_type(type)
        source = check_binding(input, "the input").get("format")
        if not isinstance(source, str):
            raise InvalidSpec(f"the input binding has no 'format'; say which {type} format its data is in")
        wanted = Port("input", "input", type, source, label="the input")
        given = Port("output", "output", type, source, label="the output")
        report = JobReport(context.job_manager, total=2)
        step = _Step(context, report, auto_convert=True, validate=validate)
        try:
            value = step.take(wanted, input)
            report.enter(JobStatus.RUNNING)  # Girder's tables allow CONVERTING_OUTPUT from RUNNING only
            result = step.give(given, check_binding(output, "the output"), value)
        except BaseException:
            report.failed()
            raise
        report.finish()
        return result


def run_analysis(
    task: Any,
    inputs: Mapping[str, Any] | None,
    outputs: Mapping[str, Any] | None,
    context: RunContext,
    auto_convert: bool = True,
    validate: bool = True,
) -> dict[str, dict[str, Any]]:
    """One run of ``task`` in ``context``; see :func:`run`."""
    spec = parse_task(task)
    mode = context.registry.mode(spec.mode)
    if mode.check is not None:
        mode.check(spec, context)  # before anything is fetched
    input_bindings = _input_bindings(spec, inputs)
    output_bindings = _output_bindings(spec, outputs)
    report = JobReport(context.job_manager, total=len(input_bindings) + 1 + len(output_bindings))
    step = _Step(context, report, auto_convert, validate)
    try:
        data = {}
        for port, binding in input_bindings:
            context.check_cancelled()
            data[port.id] = step.take(port, binding)
        context.check_cancelled()
        report.enter(JobStatus.RUNNING)
        report.step(f"running {spec.name} ({spec.mode})")
        produced = mode.run(spec, data, context)
        returned = {}
        for port, binding in output_bindings:
            context.check_cancelled()
            if port.id not in produced:
                raise AnalysisError(f"{spec.name}: mode {spec.mode!r} produced no {port.what}")
            returned[port.id] = step.give(port, binding, produced[port.id])
    except BaseException:
        report.failed()
        raise
    report.finish()
    return returned


def _bindings(value: Any, kind: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{kind}s must be an object {{{kind} id: binding}}, got {type(value).__name__}")
    return value


def _input_bindings(spec: TaskSpec, inputs: Any) -> list[tuple[Port, Mapping[str, Any]]]:
    inputs = _bindings(inputs, "input")
    bound, missing = [], []
    for port in spec.inputs:
        if port.id in inputs:
            bound.append((port, check_binding(inputs[port.id], port.what)))
        elif port.has_default:
            bound.append((port, port.default_binding()))
        else:
            missing.append(port)
    if missing:
        names = ", ".join(f"{p.id!r} ({p.declared})" for p in missing)
        unknown = sorted(set(inputs) - {p.id for p in spec.inputs})
        hint = (
            f"; the inputs given that {spec.name} does not declare are {', '.join(map(repr, unknown))}"
            if unknown
            else ""
        )
        raise MissingInput(f"{spec.name}: required input {names} has no binding and no default{hint}")
    return bound


def _output_bindings(spec: TaskSpec, outputs: Any) -> list[tuple[Port, Mapping[str, Any]]]:
    outputs = _bindings(outputs, "output")
    unknown = sorted(set(outputs) - {p.id for p in spec.outputs})
    if unknown:
        declared = ", ".join(repr(p.id) for p in spec.outputs) or "none"
        raise InvalidSpec(
            f"{spec.name} has no output {', '.join(map(repr, unknown))} to bind; its outputs are {declared}"
        )
    return [
        (port, check_binding(outputs[port.id], port.what) if port.id in outputs else {"format": port.format})
        for port in spec.outputs
    ]


def _in_memory(value: Any, what: str, limit: int) -> Any:
    if isinstance(value, Path):
        if value.is_dir():
            raise AnalysisError(f"{what} is a directory, which only a 'filepath' target can take")
        size = value.stat().st_size
        if size > limit:
            raise AnalysisError(f"{what} is {size:,} bytes, more than {MAX_DATA_BYTES} ({limit:,}) to hold in memory")
        return as_data(value.read_bytes())
    return value


class _Step:
    """Takes inputs in and gives outputs out, for one run."""

    def __init__(self, context: RunContext, report: JobReport, auto_convert: bool, validate: bool) -> None:
        self.context = context
        self.registry = context.registry
        self.report = report
        self.auto_convert = auto_convert
        self.validate = validate

    def _format(self, port: Port, format: str | None) -> None:
        if port.type is None or format is None:
            return
        try:
            self.registry.format_of(port.type, format)
        except UnknownFormat as exc:
            raise UnknownFormat(f"{port.what}: {exc}") from None

    def _convert(self, port: Port, source: str | None, target: str | None, value: Any, status: JobStatus) -> Any:
        """``value`` of the port's type from ``source`` to ``target`` format, checked."""
        if port.type is None or source is None or target is None:
            return value
        if source == target:
            if self.validate and not isinstance(value, Path):  # files are checked when converted only
                self.registry.validate(port.type, source, value, port.what)
            return value
        if not self.auto_convert:
            raise InvalidData(
                f"{port.what} is in format {source} and is wanted in {port.type}/{target}, but auto_convert is off"
            )
        self.report.enter(status)
        self.report.note(f"converting {port.what} from {source} to {target}")
        value = _in_memory(value, port.what, self.context.max_data_bytes)
        return self.registry.convert_data(port.type, source, target, value, self.validate, port.what)

    def take(self, port: Port, binding: Mapping[str, Any]) -> Any:
        what = port.what
        mode = binding_mode(binding)
        fetch = self.registry.fetcher(mode, what)
        source = binding.get("format") or port.format
        self._format(port, source)
        converting = port.type is not None and port.format is not None and source != port.format
        if mode != "inline":
            self.report.enter(JobStatus.FETCHING_INPUT)
        self.report.step(f"fetching {what}" if mode != "inline" else f"reading {what}")
        name = safe_name(port.filename or str(binding.get("filename") or port.id))
        want_file = port.target == "filepath" and not converting
        value = fetch(binding, BindingContext(what, self.context, want_file=want_file, filename=name))
        if port.target != "filepath":
            value = _in_memory(value, what, self.context.max_data_bytes)
        value = self._convert(port, source, port.format, value, JobStatus.CONVERTING_INPUT)
        if port.target == "filepath" and not isinstance(value, Path):
            path = self.context.tempdir / name
            path.write_bytes(to_bytes(value))
            value = path
        return str(value) if isinstance(value, Path) else value

    def give(self, port: Port, binding: Mapping[str, Any], value: Any) -> dict[str, Any]:
        what = port.what
        mode = binding_mode(binding)
        push = self.registry.pusher(mode, what)
        if port.target == "filepath":
            if not isinstance(value, (str, os.PathLike)) or not Path(value).exists():
                raise AnalysisError(f"{what} has target 'filepath', but its value {value!r} names no file")
            value = Path(value)
        target = binding.get("format") or port.format
        self._format(port, target)
        doing = f"pushing {what}" if mode != "inline" else f"returning {what}"
        self.report.step(doing)
        converted = self._convert(port, port.format, target, value, JobStatus.CONVERTING_OUTPUT)
        if converted is not value:
            self.report.note(doing)
        value = converted
        self.report.enter(JobStatus.PUSHING_OUTPUT)
        filename = safe_name(str(binding.get("name") or port.filename or port.id))
        result = push(binding, value, BindingContext(what, self.context, filename=filename))
        returned = dict(result if result is not None else binding)
        if target is not None:
            returned.setdefault("format", target)
        return returned

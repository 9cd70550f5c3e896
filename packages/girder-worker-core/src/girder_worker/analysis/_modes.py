"""The built-in modes: ``python`` (a script) and ``workflow`` (steps and connections)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ._context import RunContext
from ._errors import AnalysisError, InvalidSpec, ModeNotAllowed
from ._limits import ALLOW_PYTHON_MODE
from ._spec import Port, TaskSpec, parse_task

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["ALLOW_PYTHON_MODE", "register"]


# -- python ---------------------------------------------------------------------


def check_python(task: TaskSpec, context: RunContext) -> None:
    if not context.allow_python_mode:
        raise ModeNotAllowed(
            f"{task.name} has mode 'python', which runs code taken from the message, and this worker does not "
            f"allow it; set {ALLOW_PYTHON_MODE}=true in the worker's environment to allow it"
        )


def _script(task: TaskSpec) -> str:
    script = task.raw.get("script")
    uri = task.raw.get("script_uri")
    if script is None and isinstance(uri, str):
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise InvalidSpec(f"{task.name}: script_uri {uri!r} is not a file:// URI")
        path = Path(unquote(parts.path))
        try:
            return path.read_text()
        except OSError as exc:
            raise AnalysisError(f"{task.name}: cannot read script_uri {uri!r}: {exc.strerror or exc}") from None
    if not isinstance(script, str):
        raise InvalidSpec(f"{task.name}: a python task needs 'script' (Python source) or a file:// 'script_uri'")
    return script


def run_python(task: TaskSpec, inputs: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """Run the script with each input bound to a variable of its name; read the outputs back."""
    check_python(task, context)
    code = compile(_script(task), f"<script of {task.name}>", "exec")
    namespace: dict[str, Any] = {
        "__name__": "__girder_worker_analysis__",
        "_tempdir": str(context.tempdir),
        "_job_manager": context.job_manager,
        **inputs,
    }
    exec(code, namespace)  # noqa: S102  (running the message's code is this mode's purpose; see check_python)
    missing = [port.id for port in task.outputs if port.id not in namespace]
    if missing:
        raise AnalysisError(f"{task.name}: the script did not set {', '.join(map(repr, missing))}")
    return {port.id: namespace[port.id] for port in task.outputs}


# -- workflow -------------------------------------------------------------------

# Where a step input's data comes from: a workflow input, or another step's output.
Source = tuple[str, str]  # (step name or "" for the workflow, port id)


@dataclass
class _Step:
    name: str
    raw: Mapping[str, Any]
    spec: TaskSpec
    feeds: dict[str, Source] = field(default_factory=dict)


@dataclass
class _Plan:
    order: list[_Step]
    outputs: dict[str, Source]


def _steps(task: TaskSpec) -> dict[str, _Step]:
    values = task.raw.get("steps")
    if not isinstance(values, list) or not values:
        raise InvalidSpec(f"{task.name}: a workflow needs 'steps', a list of {{'name': ..., 'task': {{...}}}}")
    steps: dict[str, _Step] = {}
    for i, value in enumerate(values):
        name = value.get("name") if isinstance(value, Mapping) else None
        if not isinstance(name, str) or not name or not isinstance(value.get("task"), Mapping):
            raise InvalidSpec(f"{task.name}: step #{i + 1} needs a 'name' and a 'task' object")
        if name in steps:
            raise InvalidSpec(f"{task.name}: two steps are named {name!r}")
        try:
            steps[name] = _Step(name, value["task"], parse_task(value["task"]))
        except InvalidSpec as exc:
            raise InvalidSpec(f"{task.name}, step {name!r}: {exc}") from None
    return steps


def _port(ports: tuple[Port, ...], id: Any, where: str, kind: str) -> str:
    if not any(port.id == id for port in ports):
        known = ", ".join(repr(p.id) for p in ports) or "none"
        raise InvalidSpec(f"{where} has no {kind} {id!r}; its {kind}s are {known}")
    return str(id)


def plan_workflow(task: TaskSpec) -> _Plan:
    """Check the steps and connections; order the steps so each runs after what feeds it."""
    steps = _steps(task)
    outputs: dict[str, Source] = {}
    for i, conn in enumerate(task.raw.get("connections") or []):
        where = f"{task.name}: connection #{i + 1}"
        if not isinstance(conn, Mapping):
            raise InvalidSpec(f"{where} is not an object")
        source: Source
        if "output_step" in conn:
            producer = steps.get(conn["output_step"])
            if producer is None:
                raise InvalidSpec(f"{where} names no step {conn['output_step']!r}")
            source = (
                producer.name,
                _port(producer.spec.outputs, conn.get("output"), f"step {producer.name!r}", "output"),
            )
        elif "name" in conn:
            source = ("", _port(task.inputs, conn["name"], task.name, "input"))
        else:
            raise InvalidSpec(f"{where} has neither 'output_step' and 'output' nor a workflow input 'name'")
        if "input_step" in conn:
            consumer = steps.get(conn["input_step"])
            if consumer is None:
                raise InvalidSpec(f"{where} names no step {conn['input_step']!r}")
            fed = _port(consumer.spec.inputs, conn.get("input"), f"step {consumer.name!r}", "input")
            if fed in consumer.feeds:
                raise InvalidSpec(f"{where}: input {fed!r} of step {consumer.name!r} is connected twice")
            consumer.feeds[fed] = source
        elif source[0] and "name" in conn:
            outputs[_port(task.outputs, conn["name"], task.name, "output")] = source
        else:
            raise InvalidSpec(f"{where} connects to nothing: give 'input_step' and 'input', or an output 'name'")
    unconnected = [port.id for port in task.outputs if port.id not in outputs]
    if unconnected:
        raise InvalidSpec(f"{task.name}: output {', '.join(map(repr, unconnected))} is connected to no step's output")
    # Kahn's algorithm; among the steps that are ready, the one listed first runs first.
    waiting = {name: {src for src, _ in step.feeds.values() if src} for name, step in steps.items()}
    order: list[_Step] = []
    while waiting:
        ready = [name for name, needs in waiting.items() if not needs]
        if not ready:
            raise InvalidSpec(f"{task.name}: steps {', '.join(map(repr, sorted(waiting)))} wait for each other")
        order.append(steps[ready[0]])
        del waiting[ready[0]]
        for needs in waiting.values():
            needs.discard(ready[0])
    return _Plan(order, outputs)


def check_workflow(task: TaskSpec, context: RunContext) -> None:
    for step in plan_workflow(task).order:
        try:
            mode = context.registry.mode(step.spec.mode)
            if mode.check is not None:
                mode.check(step.spec, context)
        except AnalysisError as exc:
            raise type(exc)(f"workflow step {step.name!r}: {exc}") from exc


def run_workflow(task: TaskSpec, inputs: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """Run each step on what its connections feed it; return the connected outputs."""
    from ._engine import run_analysis

    plan = plan_workflow(task)
    formats = {("", port.id): port.format for port in task.inputs}
    values: dict[Source, Any] = {("", key): value for key, value in inputs.items()}
    for number, step in enumerate(plan.order, start=1):
        context.check_cancelled()
        if context.job_manager is not None:
            context.job_manager.updateProgress(message=f"step {number} of {len(plan.order)}: {step.name}")
        bindings = {port: {"format": formats[src], "data": values[src]} for port, src in step.feeds.items()}
        try:
            results = run_analysis(step.raw, bindings, None, context.nested(step.name))
        except AnalysisError as exc:
            raise type(exc)(f"workflow step {step.name!r}: {exc}") from exc
        for port_id, binding in results.items():
            values[(step.name, port_id)] = binding["data"]
            formats[(step.name, port_id)] = binding.get("format")
    produced = {}
    for port in task.outputs:
        source = plan.outputs[port.id]
        value, source_format = values[source], formats[source]
        if port.type and port.format and source_format and source_format != port.format:
            value = context.registry.convert_data(port.type, source_format, port.format, value, False, port.what)
        produced[port.id] = value
    return produced


def register(registry: Registry) -> None:
    registry.add_mode("python", run_python, check_python)
    registry.add_mode("workflow", run_workflow, check_workflow)

"""A plugin that extends the built-in analysis tasks: a format with its converter,
a mode and an input binding."""

import base64
from string import Template
from urllib.parse import unquote_to_bytes

from girder_worker_utils import GirderWorkerPluginABC


def is_markdown(data):
    """Validator of table/markdown: raise ValueError (or return False) if data is not one."""
    if not isinstance(data, str) or not data.startswith("|"):
        raise ValueError("expected a Markdown table: text that starts with '|'")


def rows_to_markdown(rows):
    """Converter table/rows -> table/markdown."""
    lines = ["| " + " | ".join(rows["fields"]) + " |", "|" + " --- |" * len(rows["fields"])]
    for row in rows["rows"]:
        lines.append("| " + " | ".join(str(row.get(f, "")) for f in rows["fields"]) + " |")
    return "\n".join(lines) + "\n"


def run_template(task, inputs, context):
    """Mode "template": put the inputs into the spec's "template" ($name); runs no code."""
    text = Template(task.raw["template"]).substitute(inputs)
    return {port.id: text for port in task.outputs}


def fetch_data_url(binding, context):
    """Input binding "data": an RFC 2397 data: URL, such as data:,hello or data:;base64,aGk=."""
    header, _, payload = binding["url"].partition(",")
    raw = base64.b64decode(payload) if header.endswith(";base64") else unquote_to_bytes(payload)
    return raw.decode()


def register(registry):
    """What the entry point in the group girder_worker_analysis names."""
    registry.add_format("table", "markdown", is_markdown, "A Markdown table.")
    registry.add_converter("table", "rows", "markdown", rows_to_markdown)
    registry.add_mode("template", run_template)
    registry.add_input_binding("data", fetch_data_url)


class MarkdownPlugin(GirderWorkerPluginABC):
    """The same, from a plugin class in the group girder_worker_plugins."""

    def __init__(self, app, *args, **kwargs):
        super().__init__(app)
        from girder_worker.analysis import registry

        register(registry)

    def task_imports(self):
        return []


if __name__ == "__main__":
    from girder_worker.analysis import convert, new_registry, run

    registry = new_registry()
    register(registry)
    table = {"format": "csv", "data": "name,size\nalpha,1\nbeta,2.5\n"}
    print(convert("table", table, {"format": "markdown"}, registry=registry)["data"], end="")
    greet = {
        "mode": "template",
        "template": "Hello, $who!",
        "inputs": [{"name": "who", "type": "string", "format": "text"}],
        "outputs": [{"name": "greeting", "type": "string", "format": "text"}],
    }
    print(run(greet, {"who": {"url": "data:;base64,d29ybGQ=", "format": "text"}}, registry=registry))

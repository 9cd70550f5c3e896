"""Check the answers before cookiecutter writes anything; exit 1 with the reason if one is unusable."""

import keyword
import re
import sys

ANSWERS = {
    "plugin_name": {{ cookiecutter.plugin_name | jsonify }},
    "package_name": {{ cookiecutter.package_name | jsonify }},
    "task_name": {{ cookiecutter.task_name | jsonify }},
}
# Names a plugin's package must not shadow: ours, Celery's, pytest's and the standard library's.
TAKEN = {"girder_worker", "girder_worker_utils", "celery", "kombu", "pytest", "tests", *sys.stdlib_module_names}


def problem(name, value):
    if name == "plugin_name":
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            return "use letters, digits, '_', '-' and '.', starting with a letter or digit"
        return None
    if not value.isidentifier() or keyword.iskeyword(value):
        return "it must be a Python identifier: letters, digits and '_', not starting with a digit"
    if name == "package_name" and value in TAKEN:
        return f"{value!r} would hide the module of that name; choose another"
    if name == "package_name" and value != value.lower():
        return "Python package names are lower case"
    return None


failures = [(name, value, problem(name, value)) for name, value in ANSWERS.items()]
failures = [f for f in failures if f[2]]
for name, value, reason in failures:
    print(f"girder-worker plugin template: error: {name} {value!r} cannot be used: {reason}", file=sys.stderr)
sys.exit(1 if failures else 0)

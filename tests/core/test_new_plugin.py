"""``girder-worker new-plugin`` where cookiecutter is missing or the command line is wrong.

The template itself is tested where cookiecutter is installed, in a fresh
environment: tests/integration/test_plugin_template.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from girder_worker._new_plugin import TEMPLATE, questions

from ..conftest import ROOT, clean_env

CORE = ROOT / "packages" / "girder-worker-core"


def new_plugin(*args: str, without_cookiecutter: bool = False) -> subprocess.CompletedProcess[str]:
    # A None entry in sys.modules makes `import cookiecutter` fail as if it were not installed.
    hide = "sys.modules['cookiecutter'] = None; " if without_cookiecutter else ""
    code = f"import sys; {hide}from girder_worker.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "new-plugin", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_cookiecutter_it_says_how_to_install_it(tmp_path):
    result = new_plugin("--no-input", "--output-dir", str(tmp_path), without_cookiecutter=True)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "girder-worker: error: new-plugin needs cookiecutter, which is not installed; "
        'install it with: python -m pip install "girder-worker-core[template]"\n'
    )
    assert list(tmp_path.iterdir()) == []


def test_an_answer_must_name_a_question():
    result = new_plugin("--no-input", "plugin=thumbnails", without_cookiecutter=True)

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "girder-worker: error: 'plugin=thumbnails' is not an answer: use NAME=VALUE with NAME one of "
        "plugin_name, package_name, author, task_name"
    )


def test_help_lists_the_questions():
    result = new_plugin("--help", without_cookiecutter=True)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: girder-worker new-plugin [-h] [-o DIR] [--no-input]")
    assert "The questions: plugin_name, package_name, author, task_name." in " ".join(result.stdout.split())


def test_new_plugin_reads_no_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "girder_worker", "new-plugin", "--help"],
        env=clean_env({"GIRDER_WORKER_BROKER": "nonsense://"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_the_template_asks_what_the_issue_asks():
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())

    assert questions() == ["plugin_name", "package_name", "author", "task_name"]
    assert sorted(context["__prompts__"]) == sorted(questions())


def test_the_template_requires_the_versions_core_requires():
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    pyproject = (CORE / "pyproject.toml").read_text()
    [utils] = re.findall(r'^  "(girder-worker-utils[^"]*)",$', pyproject, re.MULTILINE)

    assert context["__utils_requirement"] == utils
    # The packages are released together, at the same versions.
    assert context["__core_requirement"] == "girder-worker-core[testing]" + utils.removeprefix("girder-worker-utils")
    assert re.search(r'^template = \["cookiecutter>=[^"]+"\]$', pyproject, re.MULTILINE)
    assert re.search(r'^testing = \["pytest>=[^"]+"\]$', pyproject, re.MULTILINE)

"""The plugin template, as a new plugin author uses it, in an environment of its own.

A fresh virtual environment gets our packages (built from packages/, as a user
gets them from the index) with cookiecutter; ``girder-worker new-plugin`` makes a
plugin there, which is installed, passes its own tests, and runs in a worker.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT, WorkerProcess, clean_env

PACKAGES = ROOT / "packages"
#: What the plugin template page shows: the plugin these answers make, file for file.
SHOWN = ROOT / "docs" / "examples" / "gw-squares"
ANSWERS = ["plugin_name=gw-squares", "task_name=square_values", "author=Ada Lovelace"]


class Venv:
    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        self.env = clean_env({"COOKIECUTTER_CONFIG": str(self._cookiecutter_config(home))})
        self.env.pop("VIRTUAL_ENV", None)

    @staticmethod
    def _cookiecutter_config(home: Path) -> Path:
        # So cookiecutter leaves the user's home alone (its replay files).
        config = home / "cookiecutter.yaml"
        config.write_text(f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n")
        return config

    def install(self, *requirements: str) -> None:
        uv = shutil.which("uv")
        if uv:
            command = [uv, "pip", "install", "--quiet", "--python", str(self.python), *requirements]
        else:
            command = [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            command += requirements
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout + result.stderr

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bin(args[0]), *args[1:]],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A new virtual environment with girder-worker-utils and girder-worker-core[template,testing]."""
    base = tmp_path_factory.mktemp("fresh")
    uv = shutil.which("uv")
    make = [uv, "venv", "--quiet", "--python", sys.executable] if uv else [sys.executable, "-m", "venv"]
    subprocess.run([*make, str(base / "venv")], check=True, capture_output=True, timeout=300)
    venv = Venv(base / "venv", base)
    venv.install(str(PACKAGES / "girder-worker-utils"), f"{PACKAGES / 'girder-worker-core'}[template,testing]")
    return venv


@pytest.fixture(scope="module")
def plugin(venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin made with ``girder-worker new-plugin`` and installed with its test extra."""
    out = tmp_path_factory.mktemp("plugins")
    result = venv.run("girder-worker", "new-plugin", "--no-input", "--output-dir", str(out), *ANSWERS, cwd=out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Created the plugin package gw-squares. To test it:\n\n"
        "  cd gw-squares\n"
        '  python -m pip install -e ".[test]"\n'
        "  python -m pytest\n"
    )
    project = out / "gw-squares"
    venv.install(f"{project}[test]")
    return project


def files_of(project: Path) -> dict[str, str]:
    return {
        str(p.relative_to(project)): p.read_text()
        for p in sorted(project.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
    }


def test_the_template_makes_the_files_the_docs_show(plugin):
    made = files_of(plugin)

    assert sorted(made) == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/gw_squares/__init__.py",
        "src/gw_squares/tasks.py",
        "tests/conftest.py",
        "tests/test_tasks.py",
    ]
    assert made == files_of(SHOWN), "docs/examples/gw-squares is not what new-plugin makes; regenerate it"
    assert "class GwSquaresPlugin(GirderWorkerPluginABC):" in made["src/gw_squares/__init__.py"]
    assert "by Ada Lovelace" in made["README.md"]


def test_the_plugin_depends_on_girder_worker_utils_alone(venv, plugin):
    code = "import importlib.metadata as m, json; print(json.dumps(m.requires('gw-squares')))"

    result = venv.run("python", "-c", code, cwd=plugin)

    assert result.returncode == 0, result.stderr
    requires = json.loads(result.stdout)
    assert [r for r in requires if "extra ==" not in r] == ["girder-worker-utils<2,>=1.0.0"]


@pytest.mark.parametrize("conftest", ["as made", "conftest_prefork.py"])
def test_the_generated_tests_pass(venv, plugin, tmp_path, conftest):
    project = tmp_path / "project"
    shutil.copytree(plugin, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if conftest != "as made":  # the testing page's conftest.py
        shutil.copy(ROOT / "docs" / "examples" / conftest, project / "tests" / "conftest.py")

    result = venv.run("python", "-m", "pytest", "-p", "no:cacheprovider", cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_a_worker_runs_the_generated_task(venv, plugin, tmp_path):
    data = {"GIRDER_WORKER_DATA_DIR": str(tmp_path / "data")}
    listing = venv.run("girder-worker", "plugins", cwd=tmp_path, env=data)
    assert listing.returncode == 0, listing.stderr
    assert "gw-squares\n  entry point:  gw-squares = gw_squares:GwSquaresPlugin\n" in listing.stdout
    assert "  tasks:        gw_squares.tasks.square_values\n" in listing.stdout

    worker = WorkerProcess([], {**venv.env, **data}, tmp_path / "worker.log")
    with worker.log_path.open("wb") as log:
        worker.proc = subprocess.Popen(
            [venv.bin("girder-worker"), "-l", "info", "-P", "solo"],
            env=worker.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        worker.wait_ready()
        assert "  . gw_squares.tasks.square_values" in worker.log
        client = (
            "from girder_worker.app import app\n"
            "from gw_squares.tasks import square_values\n"
            "print(square_values.delay([2, 3]).get(timeout=60))\n"
        )
        result = venv.run("python", "-c", client, cwd=tmp_path, env=data)
    finally:
        worker.stop(timeout=10, sig=signal.SIGKILL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[4, 9]\n"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("package_name=3d", "package_name '3d' cannot be used: it must be a Python identifier"),
        ("package_name=json", "package_name 'json' cannot be used: 'json' would hide the module of that name"),
        ("task_name=make-thumbnail", "task_name 'make-thumbnail' cannot be used: it must be a Python identifier"),
        ("plugin_name=a,b", "plugin_name 'a,b' cannot be used: use letters, digits"),
    ],
)
def test_an_unusable_answer_is_refused_and_nothing_is_made(venv, tmp_path, answer, problem):
    result = venv.run("girder-worker", "new-plugin", "--no-input", answer, cwd=tmp_path)

    assert result.returncode == 1
    assert f"girder-worker plugin template: error: {problem}" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("girder-worker: error: no plugin created: ")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_left_alone(venv, tmp_path):
    (tmp_path / "my-plugin").mkdir()
    (tmp_path / "my-plugin" / "mine.txt").write_text("keep me")

    result = venv.run("girder-worker", "new-plugin", "--no-input", cwd=tmp_path)

    assert result.returncode == 1
    assert "girder-worker: error: no plugin created: " in result.stderr
    assert "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "my-plugin").iterdir()] == ["mine.txt"]

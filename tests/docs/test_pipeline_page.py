"""The "How a task runs" page: its example prints the pipeline the app really has."""

from __future__ import annotations

import importlib

from girder_worker._app import create_app
from girder_worker._config import read_config
from girder_worker.pipeline import PIPELINE, describe

from .test_examples import DOCS, EXAMPLES

ARCHITECTURE_ORDER = [
    "intake",
    "admission",
    "cancel flag",
    "time limits",
    "argument transforms",
    "girder job",
    "result hooks",
]


def test_the_example_prints_what_the_page_shows(run):
    result = run(str(EXAMPLES / "pipeline_steps.py"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "pipeline_steps_output.txt").read_text()
    assert "pipeline_steps_output.txt" in (DOCS / "pipeline.rst").read_text()


def test_the_steps_come_in_the_order_a_run_meets_them():
    names = [step.name for step in PIPELINE]
    for step in PIPELINE:
        importlib.import_module(step.module)  # the module a step names is where it lives
    assert [name for name in names if name in ARCHITECTURE_ORDER] == ARCHITECTURE_ORDER


def test_the_app_has_every_bootstep_the_pipeline_installs_and_the_metrics_one_only_when_asked(tmp_path):
    env = {"GIRDER_WORKER_DATA_DIR": str(tmp_path)}
    plain = create_app(read_config(env))
    names = {step.__name__ for step in plain.steps["worker"] | plain.steps["consumer"]}
    assert names == {"CancelStep", "DeliveryStep", "FairDispatch", "TimeLimitStep"}

    with_metrics = create_app(read_config({**env, "GIRDER_WORKER_METRICS_PORT": "0"}))
    assert "MetricsStep" in {step.__name__ for step in with_metrics.steps["worker"]}


def test_python_m_pipeline_prints_every_step_with_its_seam_and_module(run):
    result = run("-m", "girder_worker.pipeline")

    assert result.returncode == 0, result.stderr
    assert result.stdout == describe() + "\n"
    for step in PIPELINE:
        assert f". {step.name}: {step.does}\n    on {step.seam}; in {step.module}" in result.stdout
    assert "python -m girder_worker.pipeline" in (DOCS / "pipeline.rst").read_text()

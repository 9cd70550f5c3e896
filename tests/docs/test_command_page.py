"""The lines the command and configuration pages show are the ones the command prints."""

from __future__ import annotations

from pathlib import Path

from ..conftest import ROOT

COMMAND_PAGE = (ROOT / "docs" / "command.rst").read_text()
CONFIG_PAGE = (ROOT / "docs" / "configuration.rst").read_text()


def test_an_unknown_command_reads_as_documented(run):
    result = run("-m", "girder_worker", "statu")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"\n   $ girder-worker statu\n   {line}\n" in COMMAND_PAGE


def test_version_lists_plugins_as_documented(run):
    result = run("-m", "girder_worker", "--version")

    assert result.returncode == 0, result.stderr
    plugins = result.stdout.split("plugins (entry point group girder_worker_plugins):\n", 1)[1]
    for line in plugins.splitlines():
        assert f"\n   {line}\n" in COMMAND_PAGE


def test_unknown_variables_read_as_documented(run):
    warned = run("-m", "girder_worker", "plugins", env={"GIRDER_WORKER_BROKR": "redis://redis:6379/0"})
    strict = run(
        "-m",
        "girder_worker",
        "plugins",
        env={"GIRDER_WORKER_BROKR": "redis://redis:6379/0", "GIRDER_WORKER_STRICT_CONFIG": "true"},
    )

    assert warned.returncode == 0
    [warning] = warned.stderr.splitlines()
    assert "\n   $ GIRDER_WORKER_BROKR=redis://redis:6379/0 girder-worker plugins\n" in CONFIG_PAGE
    assert f"\n   {warning}\n" in CONFIG_PAGE
    assert strict.returncode == 2
    [error] = strict.stderr.splitlines()
    assert f"\n   {error}\n" in CONFIG_PAGE


def test_a_plugin_named_by_its_package_reads_as_documented(run, tmp_path: Path):
    # gw-squares as pip installs it (docs/examples/gw-squares): its .dist-info is what
    # importlib.metadata reads; the plugin is not loaded, as its name is not the one asked for.
    dist_info = tmp_path / "site" / "gw_squares-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gw-squares\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[girder_worker_plugins]\ngw-squares = gw_squares:GwSquaresPlugin\n")

    result = run(
        "-m",
        "girder_worker",
        "plugins",
        env={"PYTHONPATH": str(tmp_path / "site"), "GIRDER_WORKER_PLUGINS": "gw_squares"},
    )

    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert "did you mean 'gw-squares'?" in line
    assert f"\n   {line}" in CONFIG_PAGE

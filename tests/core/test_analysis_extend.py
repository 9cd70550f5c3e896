"""Extending the analysis registry from the girder_worker_analysis entry point group."""

from __future__ import annotations

import importlib
import logging

import pytest

from girder_worker.analysis import Registry, UnknownMode, new_registry


@pytest.fixture
def extensions(tmp_path, monkeypatch):
    """Install (on sys.path) one working and one broken ``girder_worker_analysis`` extension."""
    site = tmp_path / "site"
    for dist, module, body in [
        (
            "gw_rot13",
            "gw_rot13",
            "import codecs\n"
            "def register(registry):\n"
            "    registry.add_format('string', 'rot13', lambda d: isinstance(d, str), 'ROT13 text.')\n"
            "    registry.add_converter('string', 'text', 'rot13', lambda d: codecs.encode(d, 'rot13'))\n"
            "    registry.add_mode('echo', lambda task, inputs, context: dict(inputs))\n",
        ),
        ("gw_broken", "gw_broken", "def register(registry):\n    raise RuntimeError('no luck')\n"),
    ]:
        info = site / f"{dist}-2.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 2.0\n")
        (info / "entry_points.txt").write_text(f"[girder_worker_analysis]\n{dist[3:]} = {module}:register\n")
        (site / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def test_entry_points_extend_a_registry_that_loads_them(extensions, caplog):
    registry = new_registry(load_entry_points=True)

    with caplog.at_level(logging.ERROR, logger="girder_worker.analysis"):
        assert registry.convert_data("string", "text", "rot13", "abc") == "nop"
    assert registry.mode("echo").run(None, {"x": 1}, None) == {"x": 1}
    [record] = caplog.records
    assert record.getMessage() == (
        "analysis extension 'broken' (entry point broken = gw_broken:register, from gw-broken 2.0) failed: "
        "RuntimeError: no luck; fix or uninstall gw-broken"
    )


def test_entry_points_are_run_once(extensions, caplog):
    registry = new_registry(load_entry_points=True)

    with caplog.at_level(logging.ERROR, logger="girder_worker.analysis"):
        registry.types()
        registry.types()
    assert len(caplog.records) == 1


def test_a_registry_made_without_entry_points_ignores_them(extensions):
    with pytest.raises(UnknownMode, match="unknown mode 'echo'"):
        new_registry().mode("echo")
    assert Registry().types() == []

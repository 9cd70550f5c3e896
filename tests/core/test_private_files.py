"""write_private: a file is replaced whole, readers never see it missing or half written."""

from __future__ import annotations

import os
import stat
import sys
import threading

import pytest

from girder_worker.broker import _private_files
from girder_worker.broker._private_files import write_private

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")


@pytest.fixture(params=["swap", "rename"])
def how(request, monkeypatch):
    """Both ways an existing file is replaced: swapped in place (Linux), or renamed over."""
    if request.param == "rename":
        monkeypatch.setattr(_private_files, "_renameat2", False)
    elif not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    return request.param


def test_an_overwrite_leaves_the_new_content_alone_and_private(tmp_path, how):
    target = tmp_path / "result.json"
    write_private(target, b"STARTED")
    write_private(target, b"SUCCESS")

    assert target.read_bytes() == b"SUCCESS"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no hidden file left behind


def test_a_reader_never_finds_the_file_missing_or_partial_while_it_is_overwritten(tmp_path, how):
    target = tmp_path / "lease.json"
    bodies = [(f"{i:04d}" * 500).encode() for i in range(2)]
    write_private(target, bodies[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(target.read_bytes())
            except FileNotFoundError:
                seen.append(b"missing")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(400):
            write_private(target, bodies[i % 2])
    finally:
        stop.set()
        reader.join()

    assert seen
    assert set(seen) <= set(bodies)


@linux_only
def test_on_linux_an_existing_file_is_swapped_not_renamed_over(tmp_path):
    # ext4 writes a file's data out at once when a rename replaces another file
    # (auto_da_alloc): ten times the cost of the swap, for every STARTED -> SUCCESS.
    old, new = tmp_path / "old", tmp_path / ".new.part"
    old.write_bytes(b"old")
    new.write_bytes(b"new")

    assert _private_files._exchanged(new, old) is True
    assert old.read_bytes() == b"new"
    assert new.read_bytes() == b"old"

    missing = tmp_path / "missing"
    assert _private_files._exchanged(new, missing) is False  # nothing to swap with: the caller renames
    assert not missing.exists()


def test_writing_a_task_s_files_interns_no_names(tmp_path, monkeypatch):
    """pathlib interns every name it parses, and a message, a lease and a result each have a
    name of their own: the interpreter's table of interned strings grew with them and doubled
    (~2 MB) in every pool process of a busy embedded-broker worker. The embedded broker's and
    the lease store's per-task writes use plain strings."""
    from girder_worker.delivery._leases import SqliteLeaseStore

    store = SqliteLeaseStore(tmp_path / "leases")
    store.claim("warm-up", "w1", {"body": "x"})  # its folder and database, made once
    folder = str(tmp_path)
    interned: list[str] = []
    real = sys.intern
    monkeypatch.setattr(sys, "intern", lambda name: interned.append(name) or real(name))

    for i in range(20):
        write_private(os.path.join(folder, f"message-{i}.msg"), b"{}", new=True)
        store.claim(f"task-{i}", "w1", {"body": str(i)})
        store.release([(f"task-{i}", 0)], "w1")

    assert interned == []
    assert all(store.claim(f"task-{i}", "w2", {"body": str(i)}).duplicate_of == "done" for i in range(20))

"""The embedded broker's data directory on real workers: private to the worker's
user, and nothing found in it (or missing from it) stops a worker."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
import uuid

import pytest

from girder_worker.broker._embedded import EmbeddedBrokerWriteError
from girder_worker.delivery._leases import SqliteLeaseStore

from ..conftest import broker_env, wait_for

QUIET = ("--without-mingle", "--without-gossip")


def test_a_worker_refuses_a_data_dir_another_user_owns_or_may_write(tmp_path, start_worker):
    data = tmp_path / "data"
    cases = []
    data.mkdir(mode=0o700)
    os.chown(data, 65534, 65534)  # nobody
    cases.append((f"'{data}' is owned by nobody (uid 65534) with mode 0700, not by this user root (uid 0)", None))
    cases.append((f"'{data}' is writable by group and others (mode 0777)", 0o777))
    cases.append((f"'{data}/broker/queue' is writable by others (mode 0703)", "queue"))

    for says, change in cases:
        if change == 0o777:
            os.chown(data, 0, 0)
            data.chmod(0o777)
        elif change == "queue":
            data.chmod(0o700)
            (data / "broker" / "queue").mkdir(parents=True, exist_ok=True)
            (data / "broker" / "queue").chmod(0o703)
        worker = start_worker(broker_env("embedded", data), "-P", "solo", plugins=(), ready=False)

        assert worker.wait_exit(timeout=60) == 2
        [line] = worker.log.splitlines()
        assert line.startswith("girder-worker: error: GIRDER_WORKER_DATA_DIR: the embedded broker's directory "), line
        assert says in line, line
        assert line.endswith(
            f"if the files are this user's, run `chown -R root {data} && chmod -R go-rwx {data}`, else set "
            "GIRDER_WORKER_DATA_DIR to a directory of this user's own"
        ), line


def test_folders_are_0700_and_files_0600_whatever_the_umask(tmp_path, start_worker, client_app):
    env = broker_env("embedded", tmp_path / "data")
    old = os.umask(0)
    try:
        start_worker(env, "-P", "prefork", "-c", "1", *QUIET)
        app = client_app(env)
        assert app.send_task("gwtest.add", args=[2, 3]).get(timeout=60) == 5
    finally:
        os.umask(old)

    data = tmp_path / "data"
    modes = {p: stat.S_IMODE(p.lstat().st_mode) for p in [data, *data.rglob("*")]}
    files = {str(p.relative_to(data)): m for p, m in modes.items() if p.is_file()}
    folders = {str(p.relative_to(data)): m for p, m in modes.items() if p.is_dir()}
    assert any(name.startswith("results/celery-task-meta-") for name in files)
    assert any(name.startswith("leases/") for name in files)
    assert {m for m in files.values()} == {0o600}, files
    assert {m for m in folders.values()} == {0o700}, folders


def _entries(queue_dir, queue):
    """One of each kind of thing that is not a message, named as the queue's messages are."""
    name = lambda kind: f"000000000000000_{kind}.{queue}.msg"  # noqa: E731  (sorted before any real message)
    (queue_dir / name("garbage")).write_bytes(b"\x00\xffnot json at all")
    (queue_dir / name("half")).write_text('{"body": "eyJh", "properties": {"delivery_tag": "x", "deliv')
    (queue_dir / name("array")).write_text("[1,2,3]")
    (queue_dir / name("foreign")).write_text('{"body": 5, "properties": {}}')
    (queue_dir / name("symlink")).symlink_to("/etc/hostname")
    (queue_dir / name("directory")).mkdir()
    os.mkfifo(queue_dir / name("fifo"))
    return ["garbage", "half", "array", "foreign", "symlink", "directory", "fifo"]


def test_bad_queue_entries_are_quarantined_and_the_worker_serves_on(tmp_path, start_worker, client_app, unique_queue):
    env = broker_env("embedded", tmp_path / "data")
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    app = client_app(env)
    kinds = _entries(tmp_path / "data" / "broker" / "queue", unique_queue)

    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=60) == 5

    quarantine = tmp_path / "data" / "quarantine"
    held = sorted(p.name for p in quarantine.iterdir())
    assert len(held) == len(kinds)
    for kind in kinds:
        [entry] = [name for name in held if f"_{kind}.{unique_queue}.msg" in name]
        [line] = [line for line in worker.log.splitlines() if f"_{kind}.{unique_queue}.msg" in line]
        assert f"embedded broker: moved queue entry '000000000000000_{kind}." in line
        assert f" into {quarantine} as '{entry}': " in line
        assert line.endswith("; the worker goes on"), line
    assert (quarantine / next(n for n in held if "_symlink." in n)).is_symlink()  # moved, not followed
    assert stat.S_ISFIFO((quarantine / next(n for n in held if "_fifo." in n)).lstat().st_mode)
    assert "Traceback" not in worker.log
    assert os.listdir(tmp_path / "data" / "broker" / "queue") == []

    # A FIFO never held the worker: it stops on SIGTERM as always.
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait_exit(timeout=30) == 0


def test_a_removed_data_dir_is_made_again_once_and_the_worker_serves_on(
    tmp_path, start_worker, client_app, unique_queue
):
    env = broker_env("embedded", tmp_path / "data")
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    app = client_app(env)
    assert app.send_task("gwtest.add", args=[1, 1], queue=unique_queue).get(timeout=60) == 2

    (tmp_path / "data").rename(tmp_path / "gone")  # at once, as the worker sees it
    shutil.rmtree(tmp_path / "gone")
    worker.wait_for_log(r"embedded broker: .*broker/queue.* was missing \(was the data directory removed\?\); made it")
    again = client_app(env)

    assert again.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=60) == 5
    assert len([line for line in worker.log.splitlines() if "was missing" in line and "broker/queue" in line]) == 1
    assert stat.S_IMODE((tmp_path / "data" / "broker" / "queue").stat().st_mode) == 0o700
    assert worker.proc.poll() is None


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path):
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_a_full_disk_is_a_clear_error_to_the_client_and_leaves_no_partial_file(
    small_disk, start_worker, client_app, unique_queue
):
    env = broker_env("embedded", small_disk / "data")
    worker = start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    app = client_app(env)
    queue_dir = small_disk / "data" / "broker" / "queue"
    _fill(small_disk / "filler")

    with pytest.raises(EmbeddedBrokerWriteError) as info:
        app.send_task("gwtest.add", args=["x" * 200_000, "y"], queue=unique_queue, task_id=str(uuid.uuid4()))

    assert str(info.value) == (
        f"embedded broker: cannot write a message to {queue_dir}: No space left on device (ENOSPC); nothing was "
        "sent (free space there, or set GIRDER_WORKER_DATA_DIR to a directory with room, on the clients and the "
        "workers alike)"
    )
    assert os.listdir(queue_dir) == []  # no partial file
    time.sleep(0.5)  # the worker polls the full disk meanwhile
    assert worker.proc.poll() is None

    (small_disk / "filler").unlink()
    assert app.send_task("gwtest.add", args=[2, 3], queue=unique_queue).get(timeout=60) == 5
    assert "Traceback" not in worker.log


def test_the_lease_of_a_done_task_keeps_no_token(tmp_path, start_worker, client_app, unique_queue):
    env = broker_env("embedded", tmp_path / "data")
    start_worker(env, "-P", "solo", "-Q", unique_queue, *QUIET)
    app = client_app(env)
    secret = "token-that-must-not-stay-on-disk"

    result = app.send_task("gwtest.add", args=[2, 3], queue=unique_queue, headers={"note": secret})

    assert result.get(timeout=60) == 5
    leases = SqliteLeaseStore(tmp_path / "data" / "leases")
    wait_for(
        lambda: leases._db().execute("SELECT state FROM lease WHERE task_id = ?", (result.id,)).fetchone() == ("done",),
        what="the lease to be released",
    )
    files = list((tmp_path / "data" / "leases").iterdir())
    assert files
    assert not any(secret.encode() in path.read_bytes() for path in files)
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o600}

"""End to end with large_image: the real girder-large-image plugin in the Girder test server
schedules the conversion of an upload, and our worker runs large_image_tasks' conversion.

One venv serves both sides, as the Digital Slide Archive's single image does: Girder 5 with
girder-large-image, large-image-tasks and large-image-converter (large_image's Girder 5 line,
the 1.35.6a198 pre-release on the package index: the 1.35.6 release requires Girder < 5),
libvips from the ``pyvips-binary`` wheel, and our packages from wheels. Girder and the worker
share the embedded broker in a directory of the test, as on one machine.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from girder_client import GirderClient

from .girder_jobs import SUCCESS
from .girder_server import GirderServer, GirderServerFactory, ensure_girder_venv, venv_worker
from .test_builtin_girder import girder_client

LARGE_IMAGE = "1.35.6a198"
#: What a Girder 5 site with large_image installs, on the server and on its workers.
LARGE_IMAGE_REQUIREMENTS = (
    "girder-worker[worker]",
    f"girder-large-image=={LARGE_IMAGE}",
    f"large-image-tasks=={LARGE_IMAGE}",
    f"large-image-converter=={LARGE_IMAGE}",
    f"large-image-source-tiff=={LARGE_IMAGE}",
    "pyvips-binary==8.18.7",
)


@pytest.fixture(scope="session")
def large_image_python() -> Path:
    return ensure_girder_venv(LARGE_IMAGE_REQUIREMENTS, name="girder-large-image-venv")


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded broker's data directory that the Girder server and the worker share."""
    return tmp_path_factory.mktemp("large-image-broker")


@pytest.fixture
def li_girder(girder_server_factory: GirderServerFactory, large_image_python: Path, shared_dir: Path) -> GirderServer:
    env = {"GIRDER_WORKER_BROKER": "", "GIRDER_WORKER_DATA_DIR": str(shared_dir)}
    return girder_server_factory("", env=env, python=large_image_python)


@pytest.fixture
def li_worker(large_image_python: Path, shared_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """``girder-worker`` of the large_image venv on the shared embedded broker; yields its log."""
    log = tmp_path / "large-image-worker.log"
    env = {"GIRDER_WORKER_DATA_DIR": str(shared_dir)}
    with venv_worker(large_image_python, env, log, ("-P", "solo", "-n", "large-image@%h")):
        yield log


def png_image(width: int = 600, height: int = 400) -> bytes:
    """A few hundred kB of noisy RGB PNG (it does not compress away), written with the stdlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + os.urandom(width * 3) for _ in range(height))  # filter 0, then RGB bytes
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_girder_large_image_converts_an_upload_on_our_worker(li_girder, li_worker):
    gc: GirderClient = girder_client(li_girder)
    folder = next(gc.listFolder(li_girder.user_id, parentFolderType="user", name="Private"))
    item = gc.createItem(folder["_id"], "slide")
    data = png_image()
    assert len(data) > 200_000
    uploaded = gc.uploadFile(item["_id"], io.BytesIO(data), "slide.png", len(data), parentType="item")

    # What a user's "Make large image" does: Girder schedules the conversion with large_image.
    job = gc.post(f"item/{item['_id']}/tiles", parameters={"fileId": uploaded["_id"], "force": "true"})
    assert job["title"] == "Large Image Conversion: slide.png"
    done = li_girder.wait_for_status(job["_id"], SUCCESS, timeout=180)
    assert done["type"] == "large_image_tiff", done

    def tile_ready() -> bool:
        return "expected" not in gc.getItem(item["_id"]).get("largeImage", {"expected": True})

    deadline = time.monotonic() + 60
    while not tile_ready():
        assert time.monotonic() < deadline, gc.getItem(item["_id"])
        time.sleep(0.2)
    names = sorted(f["name"] for f in gc.listFile(item["_id"]))
    assert names == ["slide.png", "slide.tiff"], names
    tile = gc.get(f"item/{item['_id']}/tiles/zxy/0/0/0", jsonResp=False)
    assert tile.status_code == 200
    assert tile.headers["Content-Type"].startswith("image/")
    assert len(tile.content) > 100

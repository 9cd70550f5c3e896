"""Girder transforms of docker_run against the real Girder of the test harness."""

from __future__ import annotations

import io

import pytest

from girder_worker.docker.tasks import docker_run
from girder_worker.docker.transforms import VolumePath
from girder_worker.docker.transforms.girder import (
    GirderFileIdToVolume,
    GirderFolderIdToVolume,
    GirderUploadVolumePathToFolder,
    GirderUploadVolumePathToItem,
)

from ..integration.test_builtin_girder import girder_client

pytestmark = pytest.mark.usefixtures("no_leftovers")


def test_a_girder_file_in_and_the_output_uploaded_to_an_item(gw_worker, busybox, girder):
    client = girder_client(girder)
    folder = next(client.listFolder(girder.user_id, parentFolderType="user", name="Private"))
    data = b"hello girder\n"
    uploaded = client.uploadStreamToFolder(folder["_id"], io.BytesIO(data), "in.txt", len(data))
    target = client.createItem(folder["_id"], f"docker output {gw_worker.log_path.parent.name}")
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        container_args=["sh", "-c", "tr a-z A-Z < $0 > $1", GirderFileIdToVolume(uploaded["_id"]), VolumePath("o.txt")],
        girder_result_hooks=[GirderUploadVolumePathToItem(VolumePath("o.txt"), target["_id"])],
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
    )

    assert result.get(timeout=60) == [target["_id"]]
    (stored,) = list(client.listFile(target["_id"]))
    assert stored["name"] == "o.txt"
    out = io.BytesIO()
    client.downloadFile(stored["_id"], out)
    assert out.getvalue() == b"HELLO GIRDER\n"


def test_a_girder_folder_in_and_a_directory_uploaded_to_a_folder(gw_worker, busybox, girder):
    client = girder_client(girder)
    private = next(client.listFolder(girder.user_id, parentFolderType="user", name="Private"))
    source = client.createFolder(private["_id"], f"src {gw_worker.log_path.parent.name}")
    for name in ("a.txt", "b.txt"):
        client.uploadStreamToFolder(source["_id"], io.BytesIO(name.encode()), name, len(name))
    dest = client.createFolder(private["_id"], f"dst {gw_worker.log_path.parent.name}")
    script = 'mkdir -p "$1/sub" && ls "$0" > "$1/listing.txt" && cat "$0/a.txt" > "$1/sub/copy.txt"'
    result = gw_worker.delay(
        docker_run,
        busybox,
        pull_image=False,
        container_args=["sh", "-c", script, GirderFolderIdToVolume(source["_id"]), VolumePath("outdir")],
        girder_result_hooks=[GirderUploadVolumePathToFolder(VolumePath("outdir"), dest["_id"])],
        girder_api_url=girder.api_url,
        girder_client_token=girder.token,
    )

    assert result.get(timeout=60) == [dest["_id"]]
    (listing_item,) = list(client.listItem(dest["_id"], name="listing.txt"))
    (listing,) = list(client.listFile(listing_item["_id"]))
    out = io.BytesIO()
    client.downloadFile(listing["_id"], out)
    assert out.getvalue() == b"a.txt\nb.txt\n"
    (sub,) = list(client.listFolder(dest["_id"], name="sub"))
    assert [i["name"] for i in client.listItem(sub["_id"])] == ["copy.txt"]

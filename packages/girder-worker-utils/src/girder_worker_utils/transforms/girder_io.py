"""Transforms that read their input from Girder and write results back to it.

Each one talks to Girder through a ``girder_client.GirderClient``, its ``gc``:

- made inside a Girder server (a Girder plugin publishing a task from a REST
  request), it carries Girder's API URL for workers and a new token of the current
  user that may read and write data (``GIRDER_WORKER_JOB_GC_SCOPE`` adds scopes);
- given as ``gc=``, that client;
- otherwise none: when the task runs, the run's own client is used (the
  ``girder_api_url`` and ``girder_client_token`` the task was published with, see
  :attr:`girder_worker_utils.Task.girder_client`).

Example, from a client with a Girder token::

    result = analyse.delay(
        GirderFileId(file_id),
        girder_api_url=api_url,
        girder_client_token=token,
        girder_result_hooks=[GirderUploadToItem(item_id)],
    )

The task receives a local path in place of ``GirderFileId``; the path it returns
is uploaded to the item.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from typing import Any
from urllib.parse import urlencode

from ..transform import ResultTransform, Transform

__all__ = [
    "GirderClientResultTransform",
    "GirderClientTransform",
    "GirderFileId",
    "GirderFolderId",
    "GirderItemId",
    "GirderItemMetadata",
    "GirderUploadJobArtifact",
    "GirderUploadToFolder",
    "GirderUploadToItem",
]


def _girder_request_client() -> Any:
    """A client for the worker, when called inside a Girder REST request; else None."""
    try:
        from girder.api.rest import getCurrentToken, getCurrentUser
        from girder_client import GirderClient
        from girder_plugin_worker.utils import getWorkerApiUrl
    except ImportError:  # not inside a Girder server
        return None
    try:
        user = getCurrentUser()
    except Exception:  # no request in progress
        return None
    client = GirderClient(apiUrl=getWorkerApiUrl())
    if user is not None:
        from girder.constants import TokenScope
        from girder.models.token import Token

        scope = {TokenScope.DATA_READ, TokenScope.DATA_WRITE}
        extra = os.environ.get("GIRDER_WORKER_JOB_GC_SCOPE", "")
        scope |= {part.strip("\"'[] ") for part in extra.split(",") if part.strip("\"'[] ")}
        client.token = Token().createToken(days=7, scope=sorted(scope), user=user)["_id"]
    else:
        token = getCurrentToken()
        if token is None:
            return None
        client.token = token["_id"]
    return client


class GirderClientTransform(Transform):
    """A transform that uses Girder: its ``gc`` attribute is its Girder client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        gc = kwargs.pop("gc", None)
        self.gc = gc if gc is not None else _girder_request_client()

    @property
    def client(self) -> Any:
        """``gc``, or the running task's own Girder client when there is none."""
        if self.gc is not None:
            return self.gc
        from celery import current_task

        client = getattr(current_task, "girder_client", None) if current_task else None
        if client is None:
            raise RuntimeError(
                f"{self.__class__.__name__} has no Girder client: publish the task with girder_api_url "
                "and girder_client_token, or pass gc=GirderClient(...)"
            )
        return client


class GirderClientResultTransform(ResultTransform, GirderClientTransform):
    """A result hook that uses Girder."""


def _download_dir() -> str:
    return tempfile.mkdtemp(prefix="girder_worker_")


class GirderFileId(GirderClientTransform):
    """A Girder file, downloaded for the run: the task receives its local path.

    Args:
        _id: the file's id.
    """

    def __init__(self, _id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.file_id = _id

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.file_id}')"

    def transform(self) -> str:
        self.file_path = os.path.join(_download_dir(), str(self.file_id))
        self.client.downloadFile(self.file_id, self.file_path)
        return self.file_path

    def cleanup(self) -> None:
        path = getattr(self, "file_path", None)
        if path:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


class GirderItemId(GirderClientTransform):
    """A Girder item, downloaded for the run: the task receives the directory of its files."""

    def __init__(self, _id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item_id = _id

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.item_id}')"

    def transform(self) -> str:
        parent = _download_dir()
        self.item_path = os.path.join(parent, str(self.item_id))
        self.client.downloadItem(self.item_id, parent, str(self.item_id))
        return self.item_path

    def cleanup(self) -> None:
        path = getattr(self, "item_path", None)
        if path:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


class GirderFolderId(GirderClientTransform):
    """A Girder folder, downloaded for the run: the task receives its local directory."""

    def __init__(self, _id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder_id = _id

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.folder_id}')"

    def transform(self) -> str:
        self.folder_path = os.path.join(_download_dir(), str(self.folder_id))
        self.client.downloadFolderRecursive(self.folder_id, self.folder_path)
        return self.folder_path

    def cleanup(self) -> None:
        path = getattr(self, "folder_path", None)
        if path:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


class GirderItemMetadata(GirderClientTransform):
    """A result hook that adds the task's result (a dict) to an item's metadata."""

    def __init__(self, _id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item_id = _id

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.item_id}')"

    def transform(self, data: Any) -> Any:  # type: ignore[override]
        self.client.addMetadataToItem(self.item_id, data)
        return data

    def exception(self) -> None:
        """Nothing to undo: the metadata is written only after a success."""


class _Upload(GirderClientResultTransform):
    """Uploads the path a task returns; ``delete_file`` removes it afterwards."""

    def __init__(self, _id: str, delete_file: bool = False, upload_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.upload_kwargs = upload_kwargs or {}
        self.delete_file = delete_file

    def cleanup(self) -> None:
        path = getattr(self, "output_file_path", None)
        if self.delete_file is True and path and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


class GirderUploadToItem(_Upload):
    """A result hook: uploads the returned file, or each file of the returned
    directory, to a Girder item; the result becomes the item's id."""

    def __init__(self, _id: str, delete_file: bool = False, upload_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(_id, delete_file, upload_kwargs, **kwargs)
        self.item_id = _id

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.item_id}')"

    def transform(self, path: str) -> str:  # type: ignore[override]
        self.output_file_path = path
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    self.client.uploadFileToItem(self.item_id, full, **self.upload_kwargs)
        else:
            self.client.uploadFileToItem(self.item_id, path, **self.upload_kwargs)
        return str(self.item_id)


class GirderUploadToFolder(_Upload):
    """A result hook: uploads the returned file, or the returned directory with its
    subdirectories, to a Girder folder; the result becomes the folder's id.

    With ``must_exist=False`` a path the task did not create is no error.
    """

    def __init__(self, _id: str, delete_file: bool = False, upload_kwargs: dict[str, Any] | None = None,
                 must_exist: bool = True, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(_id, delete_file, upload_kwargs, **kwargs)
        self.folder_id = _id
        self.must_exist = must_exist

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.folder_id}')"

    def _upload_folder(self, path: str, folder_id: str) -> None:
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                self.client.uploadFileToFolder(folder_id, full, **self.upload_kwargs)
            elif os.path.isdir(full) and not os.path.islink(full):
                child = self.client.createFolder(folder_id, name, reuseExisting=True)
                self._upload_folder(full, child["_id"])

    def transform(self, path: str) -> str | None:  # type: ignore[override]
        self.output_file_path = path
        if not self.must_exist and not os.path.exists(path):
            return None
        if os.path.isdir(path):
            self._upload_folder(path, self.folder_id)
        else:
            self.client.uploadFileToFolder(self.folder_id, path, **self.upload_kwargs)
        return str(self.folder_id)


class GirderUploadJobArtifact(GirderClientResultTransform):
    """A result hook: attaches the returned file, or each file of the returned
    directory, to the Girder job as an artifact (``POST job/{id}/artifact``, a
    route some Girder plugins add; girder-jobs itself has none). Missing paths are
    no error: the artifacts are optional."""

    def __init__(self, job_id: str | None = None, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.name = name

    def _repr_model_(self) -> str:
        return f"{self.__class__.__name__}('{self.job_id}')"

    def _upload_artifact(self, path: str, name: str | None = None) -> None:
        query = urlencode({
            "name": name or os.path.basename(path),
            "size": os.stat(path).st_size,
            "mimeType": mimetypes.guess_type(path)[0] or "application/octet-stream",
        })  # fmt: skip
        with open(path, "rb") as handle:
            self.client.post(f"job/{self.job_id}/artifact?{query}", data=handle)

    def transform(self, path: str) -> Any:  # type: ignore[override]
        if self.job_id is None and self.job is not None:
            self.job_id = str(self.job["_id"])
        if self.job_id is None:
            raise RuntimeError(
                "GirderUploadJobArtifact has no job: pass job_id=, or publish the task with a Girder job"
            )
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    self._upload_artifact(full)
        elif os.path.isfile(path):
            self._upload_artifact(path, self.name)
        return path

"""The ``girder`` binding: inputs downloaded from a Girder, outputs uploaded to one.

Input: ``{"mode": "girder", "api_url": ..., "token": ..., "id": ...,
"resource_type": "file" | "item" | "folder", "name": ...}``. Output:
``{"mode": "girder", "api_url": ..., "token": ..., "parent_id": ...,
"parent_type": "folder" | "item", "name": ..., "reference": ...}``. Instead of
``api_url`` a binding may give ``host``, ``port``, ``scheme`` and ``api_root``
(the original's keys); without either, and without ``token``, the message's
``girder_api_url`` and ``girder_client_token`` are used.

A binding's Girder is reached only on the hosts ``GIRDER_WORKER_HTTP_ALLOWED_HOSTS``
allows (as ``http`` bindings), and an input downloads no more than
``GIRDER_WORKER_MAX_DATA_BYTES``: a file is cut off at that size, and an item or
folder that Girder says is larger is not downloaded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._bindings import as_data, open_data, public_binding, required, shown_url
from ._context import BindingContext, safe_name
from ._errors import AnalysisError, InvalidSpec
from ._limits import MAX_DATA_BYTES, check_host

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["register"]

_RESOURCES = ("file", "item", "folder")
_PARENTS = ("folder", "item")


def _client(binding: Mapping[str, Any], context: BindingContext) -> Any:
    from girder_client import GirderClient  # type: ignore[import-untyped]

    run = context.run
    if binding.get("api_url"):
        client = GirderClient(apiUrl=str(binding["api_url"]))
    elif binding.get("host"):
        client = GirderClient(
            host=binding["host"],
            port=binding.get("port"),
            apiRoot=binding.get("api_root"),
            scheme=binding.get("scheme"),
        )
    elif run.girder_api_url:
        client = GirderClient(apiUrl=run.girder_api_url)
    else:
        raise InvalidSpec(
            f"{context.what}: a girder binding needs 'api_url' (or 'host'), and the message has no girder_api_url"
        )
    api_url = str(client.urlBase).rstrip("/")
    check_host(api_url, run.http_allowed_hosts, context.what, shown_url(api_url))
    token = binding.get("token")
    # The message's token goes only to the Girder it came with, not to any api_url a binding names.
    same_girder = run.girder_api_url and _origin(str(client.urlBase)) == _origin(run.girder_api_url)
    if not token and run.girder_token and same_girder:
        token = run.girder_token
    if token:
        client.setToken(str(token))
    return client


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


@contextmanager
def _girder_errors(what: str, action: str) -> Iterator[None]:
    from girder_client import HttpError

    try:
        yield
    except HttpError as exc:
        message = exc.responseText
        with suppress(ValueError, AttributeError):
            message = json.loads(message).get("message", message)
        raise AnalysisError(f"{what}: Girder answered HTTP {exc.status} to {action}: {message}") from exc
    except OSError as exc:  # requests' connection errors are OSErrors too
        raise AnalysisError(f"{what}: could not reach Girder to {action}: {exc.__class__.__name__}: {exc}") from exc


class _Capped(io.RawIOBase):
    """A writable that passes at most ``limit`` bytes to ``out``, then raises."""

    def __init__(self, out: IO[bytes], limit: int, what: str, resource: str) -> None:
        super().__init__()
        self.out, self.limit, self.size = out, limit, 0
        self.what, self.resource = what, resource

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        self.size += len(chunk)
        if self.size > self.limit:
            raise AnalysisError(
                f"{self.what}: Girder {self.resource} sends more than {MAX_DATA_BYTES} ({self.limit:,} bytes); "
                "the rest was not read (raise it on the worker to fetch larger inputs)"
            )
        self.out.write(chunk)
        return len(chunk)


def _check_size(client: Any, kind: str, resource_id: str, limit: int, what: str) -> None:
    """Refuse an item or folder whose size, as Girder reports it, exceeds ``limit``."""
    found = client.getItem(resource_id) if kind == "item" else client.getFolder(resource_id)
    size = found.get("size") if isinstance(found, dict) else None
    if isinstance(size, int) and size > limit:
        raise AnalysisError(
            f"{what}: Girder {kind} {resource_id} holds {size:,} bytes, more than {MAX_DATA_BYTES} "
            f"({limit:,}); nothing was downloaded (raise it on the worker to fetch larger inputs)"
        )


def _tree_size(top: Path) -> int:
    return sum(p.lstat().st_size for p in top.rglob("*") if p.is_file() and not p.is_symlink())


def fetch_girder(binding: Mapping[str, Any], context: BindingContext) -> Any:
    what = context.what
    resource_id = str(required(binding, "id", what, "the id of the Girder file, item or folder"))
    kind = binding.get("resource_type", "file")
    if kind not in _RESOURCES:
        raise InvalidSpec(f"{what}: resource_type {kind!r} is not one of {', '.join(_RESOURCES)}")
    client = _client(binding, context)
    action = f"download {kind} {resource_id}"
    with _girder_errors(what, action):
        if kind == "item":
            files = list(client.listFile(resource_id))
            if len(files) == 1:
                kind, resource_id = "file", files[0]["_id"]
            elif not files:
                raise AnalysisError(f"{what}: Girder item {resource_id} holds no file")
            elif not context.want_file:
                raise AnalysisError(
                    f"{what}: Girder item {resource_id} holds {len(files)} files; "
                    "give the input target 'filepath' to get them as a directory"
                )
        limit = context.run.max_data_bytes
        if kind == "file":
            resource = f"file {resource_id}"
            if context.want_file:
                target = context.run.tempdir / safe_name(str(binding.get("name") or context.filename))
                with target.open("wb") as out:
                    client.downloadFile(resource_id, _Capped(out, limit, what, resource))
                return target
            buffer = io.BytesIO()
            client.downloadFile(resource_id, _Capped(buffer, limit, what, resource))
            return as_data(buffer.getvalue())
        if not context.want_file:
            raise AnalysisError(f"{what}: a Girder {kind} downloads as a directory; give the input target 'filepath'")
        _check_size(client, kind, resource_id, limit, what)
        target = context.run.tempdir / safe_name(str(binding.get("name") or context.filename))
        target.mkdir()
        if kind == "item":
            client.downloadItem(resource_id, str(target))
        else:
            client.downloadFolderRecursive(resource_id, str(target))
        if _tree_size(target) > limit:  # Girder said less than it sent
            raise AnalysisError(
                f"{what}: Girder {kind} {resource_id} sent more than {MAX_DATA_BYTES} ({limit:,} bytes); "
                "raise it on the worker to fetch larger inputs"
            )
        return target


def push_girder(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    what = context.what
    parent_id = str(required(binding, "parent_id", what, "the id of the Girder folder or item to upload into"))
    parent_type = binding.get("parent_type", "folder")
    if parent_type not in _PARENTS:
        raise InvalidSpec(f"{what}: parent_type {parent_type!r} is not one of {', '.join(_PARENTS)}")
    default_name = data.name if isinstance(data, Path) else context.filename
    name = str(binding.get("name") or default_name)
    client = _client(binding, context)
    with _girder_errors(what, f"upload {name!r} into {parent_type} {parent_id}"), open_data(data) as (stream, size):
        created = client.uploadFile(
            parent_id, stream, name, size, parentType=parent_type, reference=binding.get("reference")
        )
    return public_binding(binding, file_id=created.get("_id"), item_id=created.get("itemId"))


def register(registry: Registry) -> None:
    registry.add_input_binding("girder", fetch_girder)
    registry.add_output_binding("girder", push_girder)

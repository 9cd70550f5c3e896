"""The built-in input and output bindings: ``inline``, ``http`` and ``local``.

A fetch handler returns the data (``str``, ``bytes`` or an object) or a
:class:`~pathlib.Path` to a file it wrote; a push handler sends data, or the file
a :class:`~pathlib.Path` names, and returns what the caller gets back.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ._context import BindingContext
from ._errors import AnalysisError, InvalidSpec

if TYPE_CHECKING:
    import requests

    from ._registry import Registry

__all__ = ["as_data", "public_binding", "register", "to_bytes"]

_CHUNK = 1 << 16
_TIMEOUT = (10.0, 300.0)
_SECRETS = ("token", "headers")


def to_bytes(data: Any) -> bytes:
    """The bytes of ``data`` when it goes to a file: text as UTF-8, objects as JSON."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data).encode()


def as_data(raw: bytes) -> str | bytes:
    """Fetched bytes as the data of a format: text when they are UTF-8."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


@contextmanager
def open_data(data: Any) -> Iterator[tuple[IO[bytes], int]]:
    """A readable binary stream of ``data`` (or of the file a Path names) and its size."""
    if isinstance(data, Path):
        with data.open("rb") as stream:
            yield stream, data.stat().st_size
    else:
        raw = to_bytes(data)
        yield io.BytesIO(raw), len(raw)


def public_binding(binding: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """What goes back to the caller for a pushed output: the binding without its secrets."""
    return {**{k: v for k, v in binding.items() if k not in _SECRETS}, **extra}


def required(binding: Mapping[str, Any], key: str, what: str, example: str) -> Any:
    value = binding.get(key)
    if value in (None, ""):
        raise InvalidSpec(f"{what}: the binding has no {key!r} ({example})")
    return value


def shown_url(url: str) -> str:
    """``url`` without user info or query, which may hold credentials."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


# -- inline ---------------------------------------------------------------------


def fetch_inline(binding: Mapping[str, Any], context: BindingContext) -> Any:
    if "data" not in binding:
        raise InvalidSpec(f"{context.what}: an inline binding needs 'data' (or another 'mode', such as http)")
    return binding["data"]


def push_inline(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    if isinstance(data, Path):
        data = as_data(data.read_bytes())
    if isinstance(data, bytes):
        raise AnalysisError(f"{context.what}: binary data cannot be returned inline; bind the output to a file")
    return {**binding, "data": data}


# -- http -----------------------------------------------------------------------


def _check_answer(response: requests.Response, method: str, url: str, what: str) -> None:
    if response.status_code >= 400:
        raise AnalysisError(
            f"{what}: {method} {shown_url(url)} answered HTTP {response.status_code} {response.reason}".rstrip()
        )


def fetch_http(binding: Mapping[str, Any], context: BindingContext) -> Any:
    url = required(binding, "url", context.what, "the URL to fetch")
    method = str(binding.get("method") or "GET").upper()
    limit = binding.get("maxSize")
    import requests  # on first use: it adds 0.1 s to every worker's start

    try:
        response = requests.request(
            method,
            url,
            headers=binding.get("headers"),
            params=binding.get("params"),
            stream=True,
            timeout=_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise AnalysisError(f"{context.what}: {method} {shown_url(url)} failed: {exc.__class__.__name__}") from exc
    with response:
        _check_answer(response, method, url, context.what)
        chunks = _limited(response, limit, url, context.what)
        if not context.want_file:
            return as_data(b"".join(chunks))
        target = context.run.tempdir / context.filename
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return target


def _limited(response: requests.Response, limit: Any, url: str, what: str) -> Iterator[bytes]:
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if limit is not None and size > int(limit):
            raise AnalysisError(f"{what}: {shown_url(url)} sends more than maxSize={limit} bytes")
        yield chunk


def push_http(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    url = required(binding, "url", context.what, "the URL to send the output to")
    method = str(binding.get("method") or "POST").upper()
    import requests

    with open_data(data) as (stream, size):
        headers = {"Content-Length": str(size), **(binding.get("headers") or {})}
        try:
            response = requests.request(
                method, url, data=stream, headers=headers, params=binding.get("params"), timeout=_TIMEOUT
            )
        except requests.RequestException as exc:
            raise AnalysisError(f"{context.what}: {method} {shown_url(url)} failed: {exc.__class__.__name__}") from exc
    with response:
        _check_answer(response, method, url, context.what)
    return public_binding(binding)


# -- local ----------------------------------------------------------------------


def _path(binding: Mapping[str, Any], what: str) -> Path:
    path = binding.get("path")
    if not path and isinstance(binding.get("url"), str):
        path = unquote(urlsplit(binding["url"]).path)
    if not path:
        raise InvalidSpec(f"{what}: a local binding needs 'path' (or a file:// 'url')")
    return Path(path)


def fetch_local(binding: Mapping[str, Any], context: BindingContext) -> Any:
    path = _path(binding, context.what)
    if not path.is_file():
        raise AnalysisError(f"{context.what}: there is no file {str(path)!r} on this worker")
    return path if context.want_file else as_data(path.read_bytes())


def push_local(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    path = _path(binding, context.what)
    if not path.parent.is_dir():
        raise AnalysisError(f"{context.what}: the directory {str(path.parent)!r} does not exist on this worker")
    if isinstance(data, Path):
        shutil.copyfile(data, path)
    else:
        path.write_bytes(to_bytes(data))
    return public_binding(binding)


def register(registry: Registry) -> None:
    registry.add_input_binding("inline", fetch_inline)
    registry.add_output_binding("inline", push_inline)
    registry.add_input_binding("http", fetch_http)
    registry.add_output_binding("http", push_http)
    registry.add_input_binding("local", fetch_local)
    registry.add_output_binding("local", push_local)

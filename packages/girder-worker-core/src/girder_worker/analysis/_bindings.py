"""The built-in input and output bindings: ``inline``, ``http`` and ``local``.

What each may reach is checked first (see :mod:`._limits`): ``local`` paths
against ``GIRDER_WORKER_LOCAL_PATHS``, ``http`` hosts against
``GIRDER_WORKER_HTTP_ALLOWED_HOSTS``, and fetched sizes against
``GIRDER_WORKER_MAX_DATA_BYTES``.

A fetch handler returns the data (``str``, ``bytes`` or an object) or a
:class:`~pathlib.Path` to a file it wrote; a push handler sends data, or the file
a :class:`~pathlib.Path` names, and returns what the caller gets back.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from ._context import BindingContext
from ._errors import AnalysisError, BindingNotAllowed, InvalidSpec
from ._limits import MAX_DATA_BYTES, check_host, local_path

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

#: The methods each direction's meaning needs: a fetch reads, a push creates or replaces.
INPUT_METHODS = ("GET",)
OUTPUT_METHODS = ("POST", "PUT")
_MAX_REDIRECTS = 5


def _check_answer(response: requests.Response, method: str, url: str, what: str) -> None:
    if response.status_code >= 400:
        raise AnalysisError(
            f"{what}: {method} {shown_url(url)} answered HTTP {response.status_code} {response.reason}".rstrip()
        )


def _method(binding: Mapping[str, Any], allowed: tuple[str, ...], direction: str, what: str) -> str:
    method = str(binding.get("method") or allowed[0]).upper()
    if method not in allowed:
        raise BindingNotAllowed(
            f"{what}: http method {method[:20]!r} is not used for an {direction}; {direction}s use "
            f"{' or '.join(allowed)}"
        )
    return method


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _limit(binding: Mapping[str, Any], context: BindingContext) -> tuple[int, str]:
    """The most bytes to fetch, and the setting that says so."""
    limit, source = context.run.max_data_bytes, MAX_DATA_BYTES
    given = binding.get("maxSize")
    if given is not None:
        try:
            size = int(given)
        except (TypeError, ValueError):
            raise InvalidSpec(f"{context.what}: maxSize {str(given)[:40]!r} is not a number of bytes") from None
        if size < limit:
            limit, source = size, "maxSize"
    return limit, source


def _get(binding: Mapping[str, Any], context: BindingContext) -> tuple[requests.Response, str]:
    """GET the binding's URL, following redirects only to hosts the worker allows; the
    binding's headers go to its own origin only."""
    import requests  # on first use: it adds 0.1 s to every worker's start

    url = str(required(binding, "url", context.what, "the URL to fetch"))
    method = _method(binding, INPUT_METHODS, "input", context.what)
    headers, params = binding.get("headers"), binding.get("params")
    first = _origin(url)
    for _ in range(_MAX_REDIRECTS + 1):
        check_host(url, context.run.http_allowed_hosts, context.what, shown_url(url))
        try:
            response = requests.request(
                method,
                url,
                headers=headers if _origin(url) == first else None,
                params=params,
                stream=True,
                timeout=_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise AnalysisError(f"{context.what}: {method} {shown_url(url)} failed: {exc.__class__.__name__}") from exc
        if not response.is_redirect:
            return response, url
        location = response.headers.get("location", "")
        response.close()
        url, params = urljoin(response.url, location), None
    raise AnalysisError(f"{context.what}: {shown_url(url)} redirects more than {_MAX_REDIRECTS} times")


def fetch_http(binding: Mapping[str, Any], context: BindingContext) -> Any:
    limit, source = _limit(binding, context)
    response, url = _get(binding, context)
    with response:
        _check_answer(response, "GET", url, context.what)
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            raise AnalysisError(
                f"{context.what}: {shown_url(url)} sends {int(announced):,} bytes, more than {source} "
                f"({limit:,}); nothing was read"
            )
        chunks = _limited(response, limit, source, url, context.what)
        if not context.want_file:
            data = bytearray()
            for chunk in chunks:
                data += chunk
            return as_data(bytes(data))
        target = context.run.tempdir / context.filename
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return target


def _limited(response: requests.Response, limit: int, source: str, url: str, what: str) -> Iterator[bytes]:
    size = 0
    for chunk in response.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise AnalysisError(
                f"{what}: {shown_url(url)} sends more than {source} ({limit:,} bytes); the rest was not read"
            )
        yield chunk


def push_http(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    url = str(required(binding, "url", context.what, "the URL to send the output to"))
    method = _method(binding, OUTPUT_METHODS, "output", context.what)
    check_host(url, context.run.http_allowed_hosts, context.what, shown_url(url))
    import requests

    with open_data(data) as (stream, size):
        headers = {"Content-Length": str(size), **(binding.get("headers") or {})}
        try:
            response = requests.request(
                method,
                url,
                data=stream,
                headers=headers,
                params=binding.get("params"),
                timeout=_TIMEOUT,
                allow_redirects=False,
                stream=True,  # the answer's body is not wanted
            )
        except requests.RequestException as exc:
            raise AnalysisError(f"{context.what}: {method} {shown_url(url)} failed: {exc.__class__.__name__}") from exc
    with response:
        _check_answer(response, method, url, context.what)
    return public_binding(binding)


# -- local ----------------------------------------------------------------------

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _path(binding: Mapping[str, Any], context: BindingContext) -> Path:
    path = binding.get("path")
    if not path and isinstance(binding.get("url"), str):
        path = unquote(urlsplit(binding["url"]).path)
    if not path:
        raise InvalidSpec(f"{context.what}: a local binding needs 'path' (or a file:// 'url')")
    return local_path(path, context.run.local_paths, context.what)


def fetch_local(binding: Mapping[str, Any], context: BindingContext) -> Any:
    path = _path(binding, context)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
    except OSError:
        raise AnalysisError(f"{context.what}: there is no file {str(path)!r} on this worker") from None
    with os.fdopen(fd, "rb") as stream:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise AnalysisError(f"{context.what}: {str(path)!r} is not a regular file")
        if context.want_file:
            return path
        limit = context.run.max_data_bytes
        if found.st_size > limit:
            raise AnalysisError(
                f"{context.what}: {str(path)!r} is {found.st_size:,} bytes, more than {MAX_DATA_BYTES} ({limit:,})"
            )
        return as_data(stream.read(limit + 1)[:limit])


def push_local(binding: Mapping[str, Any], data: Any, context: BindingContext) -> dict[str, Any]:
    path = _path(binding, context)
    if not path.parent.is_dir():
        raise AnalysisError(f"{context.what}: the directory {str(path.parent)!r} does not exist on this worker")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o666)
    except OSError as exc:
        raise AnalysisError(f"{context.what}: cannot write {str(path)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as out, open_data(data) as (stream, _):
        shutil.copyfileobj(stream, out)
    return public_binding(binding)


def register(registry: Registry) -> None:
    registry.add_input_binding("inline", fetch_inline)
    registry.add_output_binding("inline", push_inline)
    registry.add_input_binding("http", fetch_http)
    registry.add_output_binding("http", push_http)
    registry.add_input_binding("local", fetch_local)
    registry.add_output_binding("local", push_local)

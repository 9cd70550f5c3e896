"""Girder's REST side of job reports: where a job is, how to reach it, and the calls.

:class:`JobSpec` is a message's ``jobInfoSpec`` header; :class:`ReportSettings`
the worker's configuration of reporting; :class:`Http` one thread's HTTP session,
which turns every way Girder can fail to answer into :class:`GirderUnavailable`.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..monitoring._log_filter import safe_text

__all__ = [
    "GirderUnavailable",
    "Http",
    "JobSpec",
    "ReportSettings",
    "SpecRefused",
    "UnsafeCall",
    "origin_of",
    "rewrite_api_url",
    "shown_url",
]


class GirderUnavailable(Exception):
    """Girder gave no useful answer: no connection, no answer in time, or a 5xx."""


_client_loaded = False


def load_client() -> None:
    """Import the HTTP client, and what it imports on its first request, in the calling thread.

    The worker's main process calls it before its sender thread first needs the
    client. A pool process forked while that thread is inside an import (``requests``
    itself, or ``netrc``, which requests imports when it prepares its first request)
    inherits the import's lock held, and hangs on its own first report: seen in
    the tests, with a pool process forked to replace a killed one.
    """
    global _client_loaded
    if _client_loaded:
        return
    import requests

    url = "http://127.0.0.1/"
    with requests.Session() as session:  # the request path up to the network, without sending
        prepared = session.prepare_request(requests.Request("PUT", url, data={"status": "2"}))
        session.merge_environment_settings(prepared.url, {}, None, None, None)
        adapter = session.get_adapter(url)
        if isinstance(adapter, requests.adapters.HTTPAdapter):
            adapter.get_connection_with_tls_context(prepared, verify=True)
    _client_loaded = True


#: The only methods a Girder call may use: the job contract's PUT (updates),
#: GET (a job's status) and POST (``POST /job`` when a client publishes).
METHODS = frozenset({"GET", "PUT", "POST"})
#: Bytes of a Girder answer read at most; a job with its whole log is about 4 MiB.
MAX_BODY = 16 * 1024 * 1024
_CHUNK = 64 * 1024


class UnsafeCall(GirderUnavailable):
    """A call the worker refuses to make: another scheme or method than Girder's contract uses."""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower case, default ports left out."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}{f':{port}' if port and port != default else ''}"


def shown_url(url: str) -> str:
    """``url`` as a log line may show it: no query, no fragment, no user info, one line."""
    parts = urllib.parse.urlsplit(url)
    return safe_text(f"{origin_of(url)}{parts.path}", 300)


class Http:
    """Form-encoded REST calls on one ``requests`` session (one per thread).

    Every call is bounded: only http(s) and the contract's methods, no redirect
    followed (a redirect is answered as its 3xx status: requests would carry a
    ``Girder-Token`` header to whatever host it names), connect and read
    timeouts, and at most :data:`MAX_BODY` bytes of the answer read.
    """

    def __init__(self) -> None:
        import requests  # here, not at import: it costs a worker without Girder jobs 0.1 s to start

        self._requests = requests
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy or .netrc credentials picked for a URL from a message

    def call(
        self, method: str, url: str, headers: Mapping[str, str], data: Mapping[str, str] | None, timeout: Any
    ) -> tuple[int, Any]:
        """Return ``(HTTP status, decoded JSON or None)``; raise :class:`GirderUnavailable`.

        A 3xx answer is returned as it is, with the redirect's origin as the body's
        ``location``; the redirect is not followed.
        """
        method = method.upper()
        if method not in METHODS:
            raise UnsafeCall(f"method {safe_text(method, 20)!r} is not one Girder's job contract uses")
        if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
            raise UnsafeCall("only http and https URLs are called")
        if timeout is None:
            raise UnsafeCall("a call without a timeout")
        requests = self._requests
        sent = {**headers, "Accept": "application/json", "Accept-Encoding": "identity"}
        try:
            response = self.session.request(
                method, url, headers=sent, data=data, timeout=timeout, allow_redirects=False, stream=True
            )
        except requests.Timeout:
            raise GirderUnavailable("no answer in time") from None
        except requests.ConnectionError as exc:
            text = str(exc).lower()
            raise GirderUnavailable("connection refused" if "refused" in text else "cannot connect") from None
        except requests.RequestException as exc:
            raise GirderUnavailable(type(exc).__name__) from None
        with response:
            code = response.status_code
            if code >= 500:
                raise GirderUnavailable(f"HTTP {code}")
            if 300 <= code < 400:
                location = response.headers.get("Location") or ""
                target = origin_of(urllib.parse.urljoin(url, location)) if location else "nowhere"
                return code, {"message": f"a redirect to {safe_text(target, 300)}", "location": target}
            raw = self._read(response, timeout[1] if isinstance(timeout, tuple) else float(timeout))
        if raw is None:
            return code, None
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
            body = None
        return code, body

    def _read(self, response: Any, seconds: float) -> bytes | None:
        """The body, or None (unread) if it is, or says it is, larger than :data:`MAX_BODY`.

        A body that trickles in is given up after ``seconds`` in all.
        """
        try:
            declared = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_BODY:
            return None
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + seconds
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > MAX_BODY:
                    return None
                if time.monotonic() > deadline:
                    raise GirderUnavailable("the answer took too long")
                chunks.append(chunk)
        except self._requests.RequestException:
            raise GirderUnavailable("the answer broke off") from None
        return b"".join(chunks)


@dataclass(frozen=True)
class ReportSettings:
    """How a worker reports to Girder (from ``GIRDER_WORKER_*``, see configuration)."""

    interval: float = 0.5
    retry_seconds: float = 600.0
    log_limit: int = 1_000_000
    api_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    start_timeout: float = 5.0

    @classmethod
    def for_app(cls, app: Any) -> ReportSettings:
        config = getattr(app, "girder_worker_config", None)
        if config is None:  # a plain Celery app using our Task
            return cls(api_url=(os.environ.get("GIRDER_WORKER_API_URL") or "").rstrip("/") or None)
        return cls(
            interval=config.report_interval,
            retry_seconds=config.report_retry_seconds,
            log_limit=config.job_log_limit,
            api_url=config.api_url,
        )

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def rewrite_api_url(url: str, original_api_url: str | None, api_url: str | None) -> str:
    """``url`` with its ``original_api_url`` prefix replaced by ``api_url``.

    It is how ``GIRDER_WORKER_API_URL`` reaches a job's callback URL, which Girder
    built from its own idea of its address. A URL with another prefix is unchanged.
    """
    if not api_url or not original_api_url:
        return url
    original = original_api_url.rstrip("/")
    if url == original or url.startswith(original + "/"):
        return api_url.rstrip("/") + url[len(original) :]
    return url


class SpecRefused(ValueError):
    """A ``jobInfoSpec`` the worker will not report to; ``str()`` is the one line that says so."""


#: Characters of a callback URL and of a token the worker accepts.
MAX_URL = 4096
MAX_TOKEN = 1024
_TOKEN_HEADER = "girder-token"  # noqa: S105  (a header name)


@dataclass(frozen=True)
class JobSpec:
    """A message's ``jobInfoSpec`` header: where and how to report one job.

    It comes from whoever published the message, so :meth:`parse` accepts only
    what Girder itself puts there: an http(s) URL without credentials, the method
    ``PUT``, and no header but ``Girder-Token``; with ``GIRDER_WORKER_API_URL`` set,
    only a URL on that origin.
    """

    url: str
    method: str
    headers: Mapping[str, str]
    job_id: str
    log_print: bool
    dropped_headers: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never the token
        return f"JobSpec(url={shown_url(self.url)!r}, job_id={self.job_id!r})"

    @property
    def token(self) -> str | None:
        return self.headers.get("Girder-Token")

    @classmethod
    def parse(cls, value: Any, pinned: str | None = None) -> JobSpec | None:
        """The spec in ``value``; None if there is none; :class:`SpecRefused` if it is not safe.

        ``pinned`` is ``GIRDER_WORKER_API_URL``: the URL must be on its origin.
        """
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise SpecRefused(f"girder-worker: not reporting to a Girder job: its jobInfoSpec is a "
                              f"{type(value).__name__}, not an object")  # fmt: skip
        url = value.get("url")
        reference = value.get("reference")
        job_id = safe_text(reference if reference else str(url or "").rstrip("/").rpartition("/")[2] or "?", 64)

        def refuse(what: str, fix: str) -> SpecRefused:
            return SpecRefused(f"girder-worker: not reporting to Girder job {job_id}: {what}; {fix}")

        from_girder = "Girder's worker plugin sends it so; is this message from Girder?"
        if not isinstance(url, str) or not url:
            raise refuse("its jobInfoSpec has no url", from_girder)
        if len(url) > MAX_URL or any(c.isspace() or ord(c) < 0x20 for c in url):
            raise refuse("its callback URL is too long or has spaces or control characters", from_girder)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise refuse(f"its callback URL's scheme is {safe_text(parts.scheme, 20)!r}, not http or https",
                         "set Girder's worker.api_url to an http(s) URL")  # fmt: skip
        if parts.username is not None or parts.password is not None:
            raise refuse("its callback URL carries credentials", from_girder)
        method = str(value.get("method") or "PUT").upper()
        if method != "PUT":
            raise refuse(f"its method is {safe_text(method, 20)!r}; Girder's job contract updates a job with PUT",
                         from_girder)  # fmt: skip
        headers = value.get("headers")
        token: str | None = None
        dropped: list[str] = []
        if headers is not None and not isinstance(headers, Mapping):
            raise refuse("its headers are not an object", from_girder)
        for key, header_value in (headers or {}).items():
            if str(key).lower() == _TOKEN_HEADER:
                token = header_value if isinstance(header_value, str) else None
                if token is None or len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
                    raise refuse("its Girder-Token is not a printable token", from_girder)
            else:
                dropped.append(safe_text(key, 60))
        if pinned and origin_of(url) != origin_of(pinned):
            raise refuse(
                f"its callback URL is on {safe_text(origin_of(url), 200)}, not on GIRDER_WORKER_API_URL's "
                f"origin {origin_of(pinned)}",
                "set Girder's worker.api_url to the API URL workers reach it at (or this worker's "
                "GIRDER_WORKER_API_URL to the Girder that sent the job)",
            )
        return cls(
            url=url,
            method=method,
            headers={"Girder-Token": token} if token else {},
            job_id=job_id,
            log_print=bool(value.get("logPrint", True)),
            dropped_headers=tuple(dropped),
        )

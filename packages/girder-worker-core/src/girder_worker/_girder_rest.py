"""Girder's REST side of job reports: where a job is, how to reach it, and the calls.

:class:`JobSpec` is a message's ``jobInfoSpec`` header; :class:`ReportSettings`
the worker's configuration of reporting; :class:`Http` one thread's HTTP session,
which turns every way Girder can fail to answer into :class:`GirderUnavailable`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GirderUnavailable", "Http", "JobSpec", "ReportSettings", "rewrite_api_url"]


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


class Http:
    """Form-encoded REST calls on one ``requests`` session (one per thread)."""

    def __init__(self) -> None:
        import requests  # here, not at import: it costs a worker without Girder jobs 0.1 s to start

        self._requests = requests
        self.session = requests.Session()

    def call(
        self, method: str, url: str, headers: Mapping[str, str], data: Mapping[str, str] | None, timeout: Any
    ) -> tuple[int, Any]:
        """Return ``(HTTP status, decoded JSON or None)``; raise :class:`GirderUnavailable`."""
        requests = self._requests
        try:
            response = self.session.request(method, url, headers=dict(headers), data=data, timeout=timeout)
        except requests.Timeout:
            raise GirderUnavailable("no answer in time") from None
        except requests.ConnectionError as exc:
            text = str(exc).lower()
            raise GirderUnavailable("connection refused" if "refused" in text else "cannot connect") from None
        except requests.RequestException as exc:
            raise GirderUnavailable(type(exc).__name__) from None
        if response.status_code >= 500:
            raise GirderUnavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body


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


@dataclass(frozen=True)
class JobSpec:
    """A message's ``jobInfoSpec`` header: where and how to report one job."""

    url: str
    method: str
    headers: Mapping[str, str]
    job_id: str
    log_print: bool

    @classmethod
    def parse(cls, value: Any) -> JobSpec | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
            return None
        url = value["url"]
        headers = value.get("headers")
        return cls(
            url=url,
            method=str(value.get("method") or "PUT").upper(),
            headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {},
            job_id=str(value.get("reference") or url.rstrip("/").rpartition("/")[2]),
            log_print=bool(value.get("logPrint", True)),
        )

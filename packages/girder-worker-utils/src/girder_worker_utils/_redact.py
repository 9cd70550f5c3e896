"""Tokens out of what a failed run leaves behind: its exception's message.

Celery stores a failed run's exception and traceback in the result backend, where
anyone who may read results reads them. A task that fails on a Girder call often
says the URL it called, with ``?token=...`` in it, or the token itself. Before the
exception leaves the task, its arguments and string attributes are masked: every
``...token=VALUE`` in a query string, and the run's own Girder tokens wherever they
appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["redact_exception", "redact_text"]

_QUERY = re.compile(r"(?i)([?&;](?:[\w.-]*token)=)(?!\*\*\*)([^&#\s'\"<>\\]+)")
MASK = "***"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with query-string tokens and each of ``secrets`` masked."""
    text = _QUERY.sub(r"\1" + MASK, text)
    for secret in secrets:
        if secret and len(secret) >= 8 and secret in text:
            text = text.replace(secret, MASK)
    return text


def _masked(value: Any, secrets: tuple[str, ...]) -> Any:
    return redact_text(value, secrets) if isinstance(value, str) else value


def redact_exception(exc: BaseException, secrets: Iterable[str] = (), _depth: int = 0) -> None:
    """Mask tokens in ``exc``'s arguments and string attributes, and in its causes, in place."""
    known = tuple(s for s in secrets if isinstance(s, str))
    try:
        masked = tuple(_masked(arg, known) for arg in exc.args)
        if masked != exc.args:
            exc.args = masked
        for name, value in list(vars(exc).items()):
            if isinstance(value, str):
                new = redact_text(value, known)
                if new != value:
                    setattr(exc, name, new)
    except Exception:  # an exception class that refuses it keeps its message
        return
    for inner in (exc.__cause__, exc.__context__):
        if inner is not None and _depth < 4:
            redact_exception(inner, known, _depth + 1)


def run_secrets(request: Any) -> tuple[str, ...]:
    """The Girder tokens a run's request carries."""
    found = []
    token = getattr(request, "girder_client_token", None)
    if isinstance(token, str):
        found.append(token)
    spec = getattr(request, "jobInfoSpec", None)
    headers = spec.get("headers") if isinstance(spec, dict) else None
    if isinstance(headers, dict):
        found.extend(v for v in headers.values() if isinstance(v, str))
    return tuple(found)

"""Secrets out of every log line, and names and ids that cannot forge or flood one.

What a worker prints comes partly from outside: a message's headers carry Girder
tokens (``jobInfoSpec`` headers, ``girder_client_token``), URLs may carry a token in
their query string (``?token=``), and a task's name and id are whatever the
publisher wrote. :class:`SecretFilter` is a :class:`logging.Filter` that every
handler of the worker's log carries, Celery's own lines included (``TaskPool:
Apply`` at ``-l debug`` prints whole message headers). For each record it

* masks secrets (:func:`redact`): query values of ``token``-like parameters,
  values of ``token``-like keys (``Girder-Token: …``, ``'girder_client_token': '…'``),
  the ``headers`` of a ``jobInfoSpec``, a password in a URL, and any token this
  process has seen in a message (:func:`remember_secret`), wherever it appears;
* escapes control characters (a newline, say) in task names and ids, and cuts
  them at :data:`NAME_LIMIT` characters: the ``name``/``id`` fields of Celery's
  task lines, and the values a line prints as ``name[id]``;
* cuts any line longer than :data:`LINE_LIMIT` characters.

The filter is put on the handlers Celery sets up, through its documented
``after_setup_logger`` and ``after_setup_task_logger`` signals, and on the handler
that copies log records to a job's log. :func:`redact` is what the job log and
other outputs use directly.

Example:
    >>> redact("GET http://girder/api/v1/file/1/download?token=abc123&x=1")
    'GET http://girder/api/v1/file/1/download?token=***&x=1'
    >>> safe_text("evil\\nINFO forged line")
    'evil\\\\nINFO forged line'
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from celery import signals

__all__ = [
    "LINE_LIMIT",
    "NAME_LIMIT",
    "SecretFilter",
    "forget_secret",
    "install",
    "redact",
    "redact_exception",
    "remember_secret",
    "safe_text",
]

MASK = "***"
#: Characters of a task name or id that a log line shows.
NAME_LIMIT = 200
#: Characters of one line of a log record (its message and its traceback).
LINE_LIMIT = 4096
#: Tokens from messages remembered by value; the oldest are forgotten past this many.
MAX_SECRETS = 512
_MIN_SECRET = 8  # shorter values would mask ordinary words

_KEY = r"[\w-]*token|authorization"
# ?token=VALUE, &access_token=VALUE: up to the next separator.
_QUERY = re.compile(r"(?i)([?&;](?:[\w.-]*token)=)(?!\*\*\*)([^&#\s'\"<>\\]+)")
# 'Girder-Token': 'VALUE', "girder_client_token": "VALUE", Girder-Token: VALUE, token=VALUE
_KEYED = re.compile(
    rf"(?i)((?<![\w-])(?:\\?[\"'])?(?:{_KEY})(?:\\?[\"'])?\s*[:=]\s*(?:b?\\?[\"'])?(?:Bearer\s+)?)"
    r"(?!None\b|\*\*\*)([^\"'\s,;}&)\]\\]+)"
)
# scheme://user:PASSWORD@host
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)(?!\*\*\*@)([^/\s@'\"]+)(@)")
# 'jobInfoSpec': {... 'headers': {'X': 'VALUE', ...}}: every header value
_SPEC_HEADERS = re.compile(r"(?i)(jobInfoSpec\\?[\"']?\s*[:=]\s*\{[^{}]*headers\\?[\"']?\s*:\s*\{)([^{}]*)(\})")
_HEADER_VALUE = re.compile(r"((?:\\?[\"'])[^\"'\\]*(?:\\?[\"'])\s*:\s*(?:\\?[\"']))([^\"'\\]*)")
_GATE = re.compile(r"(?i)token|authorization|://[^/\s]*@|jobinfospec")

_secrets: OrderedDict[str, None] = OrderedDict()
_secrets_lock = threading.Lock()


def remember_secret(value: Any) -> None:
    """Mask ``value`` wherever it appears in this process's logs from now on."""
    if not isinstance(value, str) or len(value) < _MIN_SECRET:
        return
    with _secrets_lock:
        _secrets[value] = None
        _secrets.move_to_end(value)
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)


def forget_secret(value: Any) -> None:
    """Stop looking for ``value`` (its run is over; patterns still mask it)."""
    with _secrets_lock:
        _secrets.pop(value, None) if isinstance(value, str) else None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every token it holds replaced by ``***``; see the module documentation."""
    if not text:
        return text
    for secret in (*secrets, *_known()):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    if _GATE.search(text) is None:
        return text
    text = _QUERY.sub(rf"\1{MASK}", text)
    text = _SPEC_HEADERS.sub(lambda m: m[1] + _HEADER_VALUE.sub(rf"\1{MASK}", m[2]) + m[3], text)
    text = _KEYED.sub(rf"\1{MASK}", text)
    return _USERINFO.sub(rf"\1{MASK}\3", text)


def _known() -> tuple[str, ...]:
    if not _secrets:
        return ()
    with _secrets_lock:
        return tuple(_secrets)


def redact_exception(exc: BaseException, secrets: Iterable[str] = (), _depth: int = 0) -> BaseException:
    """Mask tokens in the string arguments of ``exc`` (and of its causes), in place.

    ``str(exc)`` and a traceback formatted afterwards then show no token: a
    ``requests`` error prints the URL it was given, ``?token=`` included.
    """
    secrets = tuple(secrets)
    args = getattr(exc, "args", ())
    if isinstance(args, tuple) and any(isinstance(a, str) for a in args):
        cleaned = tuple(redact(a, secrets) if isinstance(a, str) else a for a in args)
        if cleaned != args:
            with contextlib.suppress(AttributeError, TypeError):
                exc.args = cleaned
    for attr in ("url", "filename"):  # urllib's HTTPError, OSError: printed by their __str__
        value = getattr(exc, attr, None)
        if isinstance(value, str) and redact(value, secrets) != value:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, attr, redact(value, secrets))
    if _depth < 5:
        for inner in (exc.__cause__, exc.__context__):
            if inner is not None and inner is not exc:
                redact_exception(inner, secrets, _depth + 1)
    return exc


_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def safe_text(value: Any, limit: int = NAME_LIMIT) -> str:
    """``value`` as one printable line: control characters escaped, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}...[{len(text) - limit} more characters]"
    if _CONTROL.search(text) is not None:
        text = text.translate(_ESCAPES)
    return text


def cap_lines(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` with each line longer than ``limit`` characters cut."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    return "\n".join(
        line if len(line) <= limit else f"{line[:limit]}...[{len(line) - limit} more characters]" for line in lines
    )


_CONVERSION = re.compile(r"%(?:\((\w+)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
_NAME_KEYS = frozenset({"name", "id", "hostname", "task_id", "task_name"})


@functools.lru_cache(maxsize=1024)
def _name_positions(fmt: str) -> frozenset[int]:
    """Indexes of the arguments a format prints as ``%s[%s]`` (a task's name and id)."""
    positions = set()
    index = 0
    for match in _CONVERSION.finditer(fmt):
        if match[2] == "%":
            continue
        before = fmt[match.start() - 1] if match.start() else ""
        after = fmt[match.end()] if match.end() < len(fmt) else ""
        if match[2] in "sr" and (after == "[" or (before == "[" and after == "]")):
            positions.add(index)
        index += 1
    return frozenset(positions)


class SecretFilter(logging.Filter):
    """Masks secrets, escapes names and ids, and cuts long lines of each record.

    It never drops a record. See the module documentation.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a log line must never be lost to its own cleaning
            self._clean(record)
        return True

    def _clean(self, record: logging.LogRecord) -> None:
        if getattr(record, "_gw_clean", False):  # the same record reaches several handlers
            return
        args = record.args
        if isinstance(args, Mapping) and _NAME_KEYS.intersection(args):
            record.args = {k: safe_text(v) if k in _NAME_KEYS and isinstance(v, str) else v for k, v in args.items()}
        elif isinstance(args, tuple) and args and isinstance(record.msg, str):
            positions = _name_positions(record.msg)
            if positions:
                record.args = tuple(safe_text(a) if i in positions else a for i, a in enumerate(args))
        message = record.getMessage()
        cleaned = cap_lines(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = cap_lines(redact(record.exc_text))
        if record.stack_info:
            record.stack_info = cap_lines(redact(record.stack_info))
        record._gw_clean = True


_filter = SecretFilter()


def add_to(handlers: Iterable[logging.Handler]) -> None:
    """Put the filter on each of ``handlers`` (once)."""
    for handler in handlers:
        if _filter not in handler.filters:
            handler.addFilter(_filter)


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on the handlers of ``logger`` (default: the root logger)."""
    add_to((logger or logging.getLogger()).handlers)


@signals.after_setup_logger.connect(dispatch_uid="girder_worker.log_filter.root")
@signals.after_setup_task_logger.connect(dispatch_uid="girder_worker.log_filter.task")
def _on_logging_set_up(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    if logger is not None:
        install(logger)
    from celery.utils.log import get_multiprocessing_logger

    mp_logger = get_multiprocessing_logger()
    if mp_logger is not None:
        install(mp_logger)

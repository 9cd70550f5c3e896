"""Compressed task messages: refused, or decompressed no further than the size limit.

kombu decompresses a message's body (its ``compression`` header) when it makes the
message, before any check of the worker sees it: a 785-byte gzip body can inflate to a
gigabyte there. girder-worker registers kombu's compression methods again (kombu's
public ``kombu.compression.register``) with decoders that refuse compressed bodies
unless ``GIRDER_WORKER_ACCEPT_COMPRESSION`` is true, and then inflate them in a stream
that stops at ``GIRDER_WORKER_MAX_MESSAGE_BYTES``. kombu reports a decoder's error as
the message's decode error, which the worker's intake turns into one log line and a
failed result (see :mod:`._consumer`).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from kombu import compression

__all__ = ["CompressionRefused", "install"]

#: kombu's methods: content type, aliases, its encoder.
_METHODS = (
    ("application/x-gzip", ("gzip", "zlib"), zlib.compress),
    ("application/x-bz2", ("bzip2", "bzip"), bz2.compress),
    ("application/x-lzma", ("lzma", "xz"), lzma.compress),
)


class CompressionRefused(ValueError):
    """A compressed body the worker does not decompress (whole)."""


def _stream(method: str, body: bytes, limit: int) -> bytes:
    """``body`` inflated with ``method``, stopping past ``limit`` bytes (0: no limit)."""
    wanted = limit + 1 if limit else -1
    out: bytes
    if method == "application/x-gzip":
        inflater = zlib.decompressobj()
        out = inflater.decompress(body, wanted if wanted > 0 else 0)
        complete = not inflater.unconsumed_tail
    elif method == "application/x-bz2":
        bunzip = bz2.BZ2Decompressor()
        out = bunzip.decompress(body, wanted)
        complete = bunzip.eof or bunzip.needs_input
    else:
        unxz = lzma.LZMADecompressor()
        out = unxz.decompress(body, wanted)
        complete = unxz.eof or unxz.needs_input
    if limit and (len(out) > limit or not complete):
        raise CompressionRefused(
            f"its {method} body inflates to more than GIRDER_WORKER_MAX_MESSAGE_BYTES ({limit:,} bytes); "
            "it was not decompressed further"
        )
    return out


def _decoder(method: str, accept: bool, limit: int) -> Callable[[Any], bytes]:
    def decode(body: Any) -> bytes:
        if not accept:
            raise CompressionRefused(
                f"its body is compressed ({method}) and this worker does not accept compressed messages "
                "(GIRDER_WORKER_ACCEPT_COMPRESSION=true accepts them, up to GIRDER_WORKER_MAX_MESSAGE_BYTES)"
            )
        return _stream(method, bytes(body), limit)

    return decode


def install(accept: bool, limit: int) -> None:
    """Register the bounded decoders for this process (its worker's configuration)."""
    for method, aliases, encoder in _METHODS:
        compression.register(encoder, _decoder(method, accept, limit), method, aliases=aliases)

"""kombu's compression methods, registered again: refused by default, bounded when accepted."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator

import pytest
from kombu import compression

from girder_worker.broker._compression import CompressionRefused, install

METHODS = [("gzip", zlib.compress), ("bzip2", bz2.compress), ("lzma", lzma.compress)]


@pytest.fixture
def restore_defaults() -> Iterator[None]:
    yield
    install(accept=False, limit=16 * 1024 * 1024)


@pytest.mark.parametrize(("alias", "pack"), METHODS)
def test_a_compressed_body_is_refused_unless_accepted(alias: str, pack, restore_defaults) -> None:
    install(accept=False, limit=1000)
    with pytest.raises(CompressionRefused, match="GIRDER_WORKER_ACCEPT_COMPRESSION=true accepts them"):
        compression.decompress(pack(b"[[1], {}, null]"), alias)


@pytest.mark.parametrize(("alias", "pack"), METHODS)
def test_an_accepted_body_inflates_up_to_the_limit_and_no_further(alias: str, pack, restore_defaults) -> None:
    install(accept=True, limit=1000)
    assert compression.decompress(pack(b"x" * 1000), alias) == b"x" * 1000
    with pytest.raises(CompressionRefused, match=r"inflates to more than GIRDER_WORKER_MAX_MESSAGE_BYTES \(1,000"):
        compression.decompress(pack(b"x" * 50_000_000), alias)

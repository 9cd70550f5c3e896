"""Path containment, as the worker's allow-lists of directories check it."""

from __future__ import annotations

import os

__all__ = ["is_under"]


def is_under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or lies below it (both already resolved: real and absolute)."""
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)

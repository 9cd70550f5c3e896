"""The original's ``girder_worker.utils.transforms.common``."""

from girder_worker_utils.transforms.common import TemporaryDirectory

__all__ = ["TemporaryDirectory"]

"""The original's ``girder_worker.utils.transform``: :mod:`girder_worker_utils.transform`."""

from girder_worker_utils.transform import ResultTransform, Transform

__all__ = ["ResultTransform", "Transform"]

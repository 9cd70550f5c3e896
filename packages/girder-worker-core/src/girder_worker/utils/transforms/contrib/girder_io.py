"""The original's ``girder_worker.utils.transforms.contrib.girder_io``."""

from girder_worker_utils.transforms.contrib.girder_io import GirderFileIdAllowDirect

__all__ = ["GirderFileIdAllowDirect"]

"""The original's ``girder_worker.utils.transforms.girder_io``."""

from girder_worker_utils.transforms.girder_io import (
    GirderClientResultTransform,
    GirderClientTransform,
    GirderFileId,
    GirderFolderId,
    GirderItemId,
    GirderItemMetadata,
    GirderUploadJobArtifact,
    GirderUploadToFolder,
    GirderUploadToItem,
)

__all__ = [
    "GirderClientResultTransform",
    "GirderClientTransform",
    "GirderFileId",
    "GirderFolderId",
    "GirderItemId",
    "GirderItemMetadata",
    "GirderUploadJobArtifact",
    "GirderUploadToFolder",
    "GirderUploadToItem",
]

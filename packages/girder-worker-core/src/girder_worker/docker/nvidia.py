"""Whether an image asks for NVIDIA GPUs (the label nvidia-docker images carry)."""

from __future__ import annotations

from typing import Any

__all__ = ["GPU_LABEL", "is_nvidia_image"]

#: The label, and its value, of images that want the host's NVIDIA driver.
GPU_LABEL = ("com.nvidia.volumes.needed", "nvidia_driver")


def is_nvidia_image(api: Any, image: str) -> bool:
    """True if ``image`` (inspected through the low-level ``api`` client) has :data:`GPU_LABEL`."""
    labels = (api.inspect_image(image).get("Config") or {}).get("Labels") or {}
    return bool(labels.get(GPU_LABEL[0]) == GPU_LABEL[1])

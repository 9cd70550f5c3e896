"""The pull policy of ``docker_run``: when to ask a registry for the image.

``pull_image=True`` pulls, and runs the local copy (with a warning) when the
registry cannot be reached; ``False`` never pulls; ``"if-not-present"`` pulls only
an image this worker lacks. An image that is neither here nor pullable fails the
run with one line.
"""

from __future__ import annotations

import logging
from typing import Any

from ._client import DockerSetupError

__all__ = ["ImageUnavailable", "ensure_image"]

logger = logging.getLogger("girder_worker.docker")

POLICIES = (True, False, "if-not-present")


class ImageUnavailable(DockerSetupError):
    """The image is not on this worker and could not be pulled."""


def _local(client: Any, image: str) -> Any:
    import docker  # type: ignore[import-untyped,import-not-found]

    try:
        return client.images.get(image)
    except docker.errors.ImageNotFound:
        return None


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())


def ensure_image(client: Any, image: str, pull_image: Any) -> None:
    """Make ``image`` available on this worker according to ``pull_image``."""
    import docker

    if pull_image not in POLICIES:
        raise ValueError(f"pull_image must be True, False or 'if-not-present', not {pull_image!r}")
    if pull_image == "if-not-present":
        if _local(client, image) is not None:
            return
    elif not pull_image:
        if _local(client, image) is None:
            raise ImageUnavailable(
                f"docker image {image!r} is not on this worker and pull_image is False; "
                f"load it (docker pull / docker load) or pass pull_image=True"
            )
        return
    logger.info("pulling docker image %s", image)
    try:
        client.images.pull(image)
    except docker.errors.DockerException as exc:
        if _local(client, image) is not None:
            logger.warning("could not pull docker image %s (%s); running the copy on this worker", image, _short(exc))
            return
        raise ImageUnavailable(
            f"cannot pull docker image {image!r} ({_short(exc)}), and it is not on this worker"
        ) from None

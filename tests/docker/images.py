"""Test images, built on this machine once (no registry is reachable from CI).

The root filesystem is Debian's busybox-static package with busybox's applets
installed, loaded with ``docker import``. Each image is tagged by a hash of what
went into it, so it is built again only when that changes.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..conftest import ROOT

CACHE = ROOT / ".cache" / "docker-images"
RECIPE = "busybox-static rootfs v1"


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def busybox_deb() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob("busybox-static_*.deb"))
    if not debs:
        try:
            _run("apt-get", "download", "busybox-static", cwd=CACHE)
        except subprocess.CalledProcessError:
            _run("apt-get", "update")
            _run("apt-get", "download", "busybox-static", cwd=CACHE)
        debs = sorted(CACHE.glob("busybox-static_*.deb"))
    return debs[-1]


def image_present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def rootfs_tar(deb: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        _run("dpkg-deb", "-x", str(deb), str(root))
        for sub in ("usr/bin", "usr/sbin", "sbin", "tmp", "etc", "proc", "sys", "dev"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        _run("chroot", str(root), "/bin/busybox", "--install", "-s")
        (root / "tmp").chmod(0o1777)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(root, arcname=".")
        return buf.getvalue()


def busybox_image(*changes: str) -> str:
    """The tag of a busybox image with the Dockerfile ``changes`` (``LABEL a=b``), built if missing."""
    deb = busybox_deb()
    digest = hashlib.sha256(deb.read_bytes() + RECIPE.encode() + "\n".join(changes).encode()).hexdigest()[:16]
    tag = f"gwtest/busybox:{digest}"
    if not image_present(tag):
        flags = [arg for change in ('CMD ["/bin/sh"]', *changes) for arg in ("--change", change)]
        _run("docker", "import", *flags, "-", tag, input=rootfs_tar(deb))
    return tag

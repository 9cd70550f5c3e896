"""Test images, built on this machine once (no registry is reachable from CI).

The root filesystem is Debian's busybox-static package with busybox's applets
installed, loaded with ``docker import``. Each image is tagged by a hash of what
went into it, so it is built again only when that changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
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


def rootfs_tar(deb: Path, files: Mapping[str, str] | None = None) -> bytes:
    """The image's root filesystem; ``files`` maps absolute paths to (executable) text files to add."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        _run("dpkg-deb", "-x", str(deb), str(root))
        for sub in ("usr/bin", "usr/sbin", "sbin", "tmp", "etc", "proc", "sys", "dev"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        _run("chroot", str(root), "/bin/busybox", "--install", "-s")
        (root / "tmp").chmod(0o1777)
        for name, text in (files or {}).items():
            path = root / name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(root, arcname=".")
        return buf.getvalue()


def busybox_image(*changes: str, files: Mapping[str, str] | None = None, name: str = "gwtest/busybox") -> str:
    """The tag of a busybox image with the Dockerfile ``changes`` (``LABEL a=b``) and ``files``, built if missing."""
    deb = busybox_deb()
    recipe = RECIPE + "\n".join(changes) + (json.dumps(files, sort_keys=True) if files else "")
    digest = hashlib.sha256(deb.read_bytes() + recipe.encode()).hexdigest()[:16]
    tag = f"{name}:{digest}"
    if not image_present(tag):
        flags = [arg for change in ('CMD ["/bin/sh"]', *changes) for arg in ("--change", change)]
        _run("docker", "import", *flags, "-", tag, input=rootfs_tar(deb, files))
    return tag


#: The Slicer execution-model description of the ``CopyUpper`` CLI: an input file,
#: an output file (both indexed), and two optional pacing parameters.
COPY_UPPER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<executable>
  <category>Testing</category>
  <title>Copy Upper</title>
  <description>Copies a text file, upper-cased, reporting its progress.</description>
  <version>1.0</version>
  <parameters>
    <label>IO</label>
    <description>Input and output</description>
    <file>
      <name>inputFile</name>
      <label>Input file</label>
      <description>The text file to read</description>
      <channel>input</channel>
      <index>0</index>
    </file>
    <file fileExtensions=".txt">
      <name>outputFile</name>
      <label>Output file</label>
      <description>The upper-cased copy</description>
      <channel>output</channel>
      <index>1</index>
    </file>
  </parameters>
  <parameters advanced="true">
    <label>Pacing</label>
    <description>How long the CLI takes</description>
    <integer>
      <name>steps</name>
      <longflag>steps</longflag>
      <label>Steps</label>
      <description>Progress steps before the copy</description>
      <default>4</default>
    </integer>
    <float>
      <name>pause</name>
      <longflag>pause</longflag>
      <label>Pause</label>
      <description>Seconds between two steps</description>
      <default>0.1</default>
    </float>
  </parameters>
</executable>
"""

#: The image's entry point: what slicer_cli_web asks of a CLI image. Its process 1 is
#: this shell, which (as process 1) ignores SIGTERM: a cancel has to kill it.
SLICER_ENTRYPOINT = r"""#!/bin/sh
case "$1" in
  --list_cli) echo '{"CopyUpper": {"type": "python", "desc-type": "xml"}}'; exit 0 ;;
  CopyUpper) shift ;;
  *) echo "no CLI named '$1' in this image" >&2; exit 2 ;;
esac
if [ "$1" = --xml ]; then cat /cli/CopyUpper.xml; exit 0; fi
steps=4
pause=0.1
while [ $# -gt 2 ]; do
  case "$1" in
    --steps) steps=$2 ;;
    --pause) pause=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
echo "<filter-start><filter-name>CopyUpper</filter-name><filter-comment>upper-casing</filter-comment></filter-start>"
echo "reading $1"
i=0
while [ "$i" -lt "$steps" ]; do
  awk -v i="$i" -v n="$steps" 'BEGIN { printf "<filter-progress>%g</filter-progress>\n", i / n }'
  sleep "$pause"
  i=$((i + 1))
done
tr a-z A-Z < "$1" > "$2" || exit 1
echo '<filter-progress>1</filter-progress>'
echo "wrote $(wc -c < "$2") bytes"
echo '<filter-end><filter-name>CopyUpper</filter-name><filter-time>0</filter-time></filter-end>'
"""


def slicer_cli_image() -> str:
    """A Slicer CLI image for slicer_cli_web: ``--list_cli``, ``CopyUpper --xml``, ``CopyUpper in out``."""
    return busybox_image(
        'ENTRYPOINT ["/cli/entrypoint.sh"]',
        "LABEL description=A_busybox_CLI_of_the_girder-worker_tests",
        files={"/cli/entrypoint.sh": SLICER_ENTRYPOINT, "/cli/CopyUpper.xml": COPY_UPPER_XML},
        name="gwtest/slicer-cli",
    )

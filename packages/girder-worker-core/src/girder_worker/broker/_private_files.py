"""Files only the worker's user can read: the embedded broker's, its results, its leases.

The embedded broker keeps task messages (with their Girder tokens), results and
leases as files under one data directory. Every directory made here is 0700 and
every file 0600, whatever the umask. A directory that another user owns, or that
group or others may write, is refused rather than used: whoever can write there
can queue tasks for the worker, or swap a file under it.

Reading is as careful: a queue entry is opened without following a symbolic link
and without blocking on a FIFO, and is read only when it is a regular file no
larger than a limit.

Example::

    >>> ensure_private_dir(Path("/tmp/gw-example"))
    >>> write_private(Path("/tmp/gw-example/a.json"), b"{}")
    >>> oct(os.stat("/tmp/gw-example/a.json").st_mode & 0o777)
    '0o600'
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
import sys
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "NotAMessageFile",
    "dir_problem",
    "ensure_private_dir",
    "open_private",
    "read_regular_file",
    "write_private",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class NotAMessageFile(Exception):
    """A directory entry that is not a regular file of a readable size."""


def ensure_private_dir(path: Path) -> bool:
    """Make ``path`` (and missing parents) with mode 0700; True when it was missing."""
    if path.is_dir():
        return False
    if not path.parent.is_dir():
        ensure_private_dir(path.parent)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return False  # another process made it first
    os.chmod(path, DIR_MODE)  # the umask may have taken bits from mkdir's mode
    return True


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def dir_problem(path: Path, *, follow: bool = False) -> str | None:
    """Why ``path`` is no private directory of this user, or None when it is one.

    A directory this user owns that others may read but not write is made 0700
    here: that is what it should have been, and nothing could have changed in it.
    """
    try:
        found = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None  # it will be made, privately
    except OSError:
        return None  # making it will say why not
    mode = stat.S_IMODE(found.st_mode)
    me = os.geteuid()
    if stat.S_ISLNK(found.st_mode):
        return f"{str(path)!r} is a symbolic link (owned by {_user(found.st_uid)}), not a directory"
    if not stat.S_ISDIR(found.st_mode):
        return f"{str(path)!r} is not a directory"
    if found.st_uid != me:
        return f"{str(path)!r} is owned by {_user(found.st_uid)} with mode {mode:04o}, not by this user {_user(me)}"
    if mode & 0o022:
        who = {0o022: "group and others", 0o020: "group", 0o002: "others"}[mode & 0o022]
        return f"{str(path)!r} is writable by {who} (mode {mode:04o})"
    if mode & 0o077:
        os.chmod(path, DIR_MODE)
    return None


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """A descriptor of ``path``, created 0600 when missing; never through a symbolic link."""
    fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC, FILE_MODE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path | str | bytes, data: bytes, *, new: bool = False) -> None:
    """Write ``data`` to ``path`` in one step: a 0600 file under a hidden name, moved into place.

    Readers never see a partial file, nor ``path`` missing while it is replaced;
    when the write fails (a full disk) the hidden file is removed and the error
    raised. ``new``: no file is known to be there (a message's fresh name, a lease
    claimed for the first time), so no swap is tried; one that is there is renamed over.
    """
    # Strings, not pathlib: pathlib interns every name it parses (sys.intern), and a name per
    # message, lease and result grew the interpreter's table of interned strings in every
    # process: it doubled to ~2 MB in each pool process of a busy worker.
    path = os.fsdecode(path)
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        if new or not _exchanged(partial, path):
            os.replace(partial, path)
            return
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    # The new file is in place and the hidden name holds the old one. Should it stay
    # (a directory there), the housekeeping sweep removes what is left of it.
    with contextlib.suppress(OSError):
        os.unlink(partial)


#: libc's ``renameat2`` once looked up; False where there is none (not Linux, not glibc 2.28+).
_renameat2: Any = None
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchanged(partial: str, path: str) -> bool:
    """Swap ``partial`` and an existing ``path`` in one step; False when there is no ``path``
    or the system cannot swap (then the caller renames).

    Readers see the old file or the new one, as with a rename over it. Why not that
    rename: ext4 (the usual Linux file system) starts writing the new file's data to
    disk on a rename over an existing file (its ``auto_da_alloc``); a result's
    ``STARTED`` turning ``SUCCESS`` and a lease's release are such overwrites. Measured
    on ext4, a loop of overwrites took 0.04 ms each swapped against 0.22 ms renamed
    over in one run, 0.32-0.40 against 0.62-0.65 ms in another (how busy the disk is
    decides). A new file was never written through at once either: these files
    outlive a worker that dies, not a machine that loses power.
    """
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(partial), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # no file to swap with, or a file system (or kernel) that cannot swap
    raise OSError(code, os.strerror(code), str(path))


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, not at import: only a worker that overwrites a file needs it

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def read_regular_file(path: str, limit: int) -> bytes:
    """The bytes of the regular file ``path``; :class:`NotAMessageFile` for anything else.

    A symbolic link is not followed, a FIFO or device is never read (the open does
    not block), and a file larger than ``limit`` bytes (0: no limit) is not read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise NotAMessageFile("it is a symbolic link") from None
        if os.path.isdir(path):
            raise NotAMessageFile("it is a directory") from None
        raise NotAMessageFile(f"it cannot be opened ({exc.strerror or exc})") from None
    try:
        found = os.fstat(fd)
        if stat.S_ISDIR(found.st_mode):
            raise NotAMessageFile("it is a directory")
        if stat.S_ISFIFO(found.st_mode):
            raise NotAMessageFile("it is a FIFO")
        if not stat.S_ISREG(found.st_mode):
            raise NotAMessageFile("it is not a regular file")
        if limit and found.st_size > limit:
            raise NotAMessageFile(f"it is {found.st_size:,} bytes, more than a message can be ({limit:,})")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)

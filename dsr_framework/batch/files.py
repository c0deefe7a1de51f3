"""Files that hold personal data: folders only their owner can open (0700), files only their owner can read
(0600), never through a symbolic link.

A backlog's store and its reports name every subject, so every file this package writes is created here, in
one place (when the framework gains an output module that owns file creation, these functions move to it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["UnsafePath", "open_private", "private_folder", "write_private"]

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path this package will not write through: a symbolic link, not ours, or not the kind expected."""


def _check_ours(path: Path, info: os.stat_result, kind: str) -> None:
    """Refuse ``path`` unless it is a ``kind`` ("folder" or "file") owned by this user, and not a link."""
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path} is a symbolic link; refusing to write personal data through it")
    expected = stat.S_ISDIR(info.st_mode) if kind == "folder" else stat.S_ISREG(info.st_mode)
    if not expected:
        raise UnsafePath(f"{path} exists and is not a {kind}")
    if info.st_uid != os.getuid():
        raise UnsafePath(f"{path} belongs to another user; refusing to write personal data there")


def private_folder(path: Path) -> Path:
    """Create ``path`` as a folder only its owner can open (0700) and return it.

    Missing parents are created as usual. An existing folder must be ours and not a symbolic link; it is
    tightened to 0700 if it was more open.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    _check_ours(path, info, "folder")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def open_private(path: Path) -> int:
    """Open (creating if needed) the regular file ``path`` for writing, 0600, never through a link: its descriptor.

    An existing file must be ours; it is tightened to 0600 if it was more open. Nothing is truncated.
    """
    fd = os.open(path, _NEW_FILE, 0o600)
    try:
        info = os.fstat(fd)
        _check_ours(path, info, "file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a new 0600 file beside it, flushed, then renamed over it.

    A reader sees the old file or the new one, never a torn one; a link at ``path`` is replaced, not followed.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, _NEW_FILE | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise

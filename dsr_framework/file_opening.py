"""Opening folders by descriptor, never through a link: the flags every open uses, a folder inside an open one
(created ``0700`` when asked), the folders above it, and what an opened folder offers its staged files and locks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Protocol

from dsr_framework.file_errors import FileErrors

__all__ = ["DIR_FLAGS", "LINK_ERRORS", "LOCK_FLAGS", "NEW_FLAGS", "READ_FLAGS", "OpenFolder", "open_ancestor",
           "open_child"]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
NEW_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO must not hang us
LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
LINK_ERRORS = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)  # O_NOFOLLOW met a link (EMLINK on the BSDs)


class OpenFolder(Protocol):
    """What a staged file and a lock need of their folder (:class:`dsr_framework.files.Folder` is one)."""

    @property
    def errors(self) -> FileErrors: ...

    @property
    def path(self) -> Path: ...

    @property
    def fd(self) -> int: ...

    def path_of(self, name: str) -> Path: ...

    def read(self, name: str, max_bytes: int) -> bytes | None: ...


def refused(exc: OSError, parent: int, name: str, shown: Path, errors: FileErrors) -> Exception:
    """Why ``name`` in ``parent`` could not be opened as a folder: a link, not a folder, or the system's reason."""
    if exc.errno in LINK_ERRORS:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                target = os.readlink(name, dir_fd=parent)
                return errors.unsafe(f"{shown} is a symbolic link (to {target}); links are not followed, so "
                                     "give the folder itself")
        return errors.unsafe(f"{shown} is not a folder")
    return errors.from_os(exc, f"open the folder {shown}")


def open_child(parent: int, name: str, create: bool, shown: Path, errors: FileErrors) -> tuple[int, bool]:
    """Open (and with ``create``, make: 0700) the folder ``name`` inside ``parent``, never through a link."""
    created = False
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise errors.from_os(exc, f"create the folder {shown}") from None
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise refused(exc, parent, name, shown, errors) from None
    if created:
        os.fchmod(fd, 0o700)  # whatever the umask
    return fd, created


def open_ancestor(path: Path, create: bool, errors: FileErrors) -> int:
    """Open the folder ``path`` that will hold the one asked for, creating what is missing (0700 each).

    Links among existing folders above are resolved by the system, as for any program; what matters is
    the folder itself, which :meth:`Folder.open` never reaches through a link.
    """
    missing: list[str] = []
    current = path
    while True:
        try:
            fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            break
        except FileNotFoundError:
            if not create or current.parent == current:
                raise
            missing.append(current.name)
            current = current.parent
    for name in reversed(missing):
        current = current / name
        try:
            child, _ = open_child(fd, name, True, current, errors)
        finally:
            os.close(fd)
        fd = child
    return fd

"""A new file of a folder, written under a hidden temporary name and renamed into place (:class:`Staged`), and what
was written (:class:`FileRecord`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dsr_framework.file_errors import translated
from dsr_framework.file_opening import OpenFolder

__all__ = ["FileRecord", "Staged"]


@dataclass(frozen=True)
class FileRecord:
    """What was written: a name in a folder, its size and its SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


class Staged:
    """A new file of a folder under a hidden temporary name, until :meth:`commit` renames it into place.

    :meth:`discard` (always safe to call, also after a commit) removes it; a process killed before either
    leaves a hidden ``.NAME.….tmp`` that :meth:`Folder.sweep` removes later.
    """

    def __init__(self, folder: OpenFolder, name: str, temp: str, fd: int) -> None:
        self.folder = folder
        self.name = name
        self._temp = temp
        self._fd = fd

    @property
    def path(self) -> Path:
        """Where the bytes are until the commit (for messages)."""
        return self.folder.path / self._temp

    def open(self) -> BinaryIO:
        """A writable handle on the file, emptied first (each attempt of a retried download starts afresh)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        return os.fdopen(os.dup(self._fd), "wb")

    def write(self, data: bytes) -> None:
        with translated(f"write in {self.folder.path}", self.folder.errors), self.open() as handle:
            handle.write(data)

    def reader(self) -> BinaryIO:
        """A handle reading the file from its start (the descriptor the file was created with, never a path)."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        return os.fdopen(os.dup(self._fd), "rb")

    def commit(self) -> FileRecord:
        """Make the file durable, rename it over ``name`` (inside the folder) and return what it holds."""
        with translated(f"write {self.folder.path_of(self.name)}", self.folder.errors):
            os.fsync(self._fd)
            digest, size = hashlib.sha256(), 0
            with self.reader() as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
            folder = self.folder.fd
            os.replace(self._temp, self.name, src_dir_fd=folder, dst_dir_fd=folder)
            os.close(self._fd)
            self._fd = -1
            os.fsync(folder)  # the rename itself survives a crash
        return FileRecord(self.name, size, digest.hexdigest())

    def discard(self) -> None:
        """Remove the temporary file (nothing to do after :meth:`commit`)."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self._temp, dir_fd=self.folder.fd)

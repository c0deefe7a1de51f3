"""A lock named after a file of a folder: a ``flock`` on a ``0600`` file inside it that only the user can create or
open, removed on release, with a note saying who holds it (see :mod:`dsr_framework.files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Callable
from types import TracebackType

from dsr_framework.file_errors import translated
from dsr_framework.file_names import short
from dsr_framework.file_opening import LINK_ERRORS, LOCK_FLAGS, OpenFolder

__all__ = ["LOCK_POLL_SECONDS", "FolderLock"]

LOCK_POLL_SECONDS = 0.05


class FolderLock:
    """An exclusive lock named after a file of a folder (see the module docstring), with a note saying who
    holds it. Use as a context manager after :meth:`acquire`; leaving it releases the lock."""

    def __init__(self, folder: OpenFolder, name: str) -> None:
        self.folder = folder
        self._name = f".{short(name)}.lock"
        self._fd = -1

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self, wait: float | None, on_busy: Callable[[], None] | None = None) -> bool:
        """Take the lock, waiting up to ``wait`` seconds (None: as long as it takes); False if still busy.
        ``on_busy`` is called each time the lock is found taken."""
        end = None if wait is None else time.monotonic() + wait
        while not self._try():
            if on_busy is not None:
                on_busy()
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(LOCK_POLL_SECONDS)
        return True

    def _try(self) -> bool:
        """One attempt; a lock file removed by the previous holder between our open and our ``flock`` is
        opened again at once."""
        folder = self.folder.fd
        with translated(f"lock {self.folder.path_of(self._name)}", self.folder.errors):
            while True:
                try:
                    fd = os.open(self._name, LOCK_FLAGS, 0o600, dir_fd=folder)
                except PermissionError:  # another process of ours created it a moment ago, before its fchmod
                    return False
                except OSError as exc:
                    if exc.errno in LINK_ERRORS:
                        shown = self.folder.path_of(self._name)
                        raise self.folder.errors.unsafe(f"{shown} is a symbolic link, not a lock file; remove "
                                                        "it") from None
                    raise
                if not self._locked(fd):
                    return False
                try:
                    now = os.stat(self._name, dir_fd=folder, follow_symlinks=False)
                except FileNotFoundError:
                    now = None
                held = os.fstat(fd)
                if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                    self._fd = fd
                    return True
                os.close(fd)  # we locked a file its holder removed on release: take the one there now

    def _locked(self, fd: int) -> bool:
        """``flock`` the lock file ``fd`` once it is known to be the user's own plain file; False if taken."""
        st = os.fstat(fd)
        # no link count of 0 here: the holder may have removed it on release since our open (:meth:`_try` then
        # finds another file at the name and opens again)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink > 1:
            os.close(fd)
            raise self.folder.errors.unsafe(f"{self.folder.path_of(self._name)} is not a lock file of yours; remove it")
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        return True

    def note(self, text: str) -> None:
        """Record who holds the lock (for :meth:`holder`)."""
        if self.held:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text.encode(), 0)

    def holder(self) -> str | None:
        """The note of whoever holds the lock now, if readable."""
        try:
            data = self.folder.read(self._name, 4096)
        except self.folder.errors.refusals:
            return None
        return data.decode("utf-8", "replace") if data else None

    def release(self) -> None:
        """Remove the lock file, then let the lock go (closing the descriptor)."""
        if not self.held:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._name, dir_fd=self.folder.fd)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

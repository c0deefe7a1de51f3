"""Every file the framework, a connector and their command lines write, on a machine other people may share.

Exports hold personal data, state files and a backlog's store name the subjects, env files hold secrets, so
one module decides how each of them reaches the disk. A :class:`Folder` is the only way in, and it holds these
promises whatever the umask and whatever is already there:

* **Whose folder.** A folder is used only if it belongs to the user running the code and no other user
  can write in it, nor in any folder above it unless that one is sticky like ``/tmp`` (refused otherwise, with
  the reason and the fix: another user who can write there could plant names, hold its locks or swap what
  the returned paths name later, and fixing someone's permissions behind their back would surprise them).
  A folder writable by its group is accepted only when that group is the user's own private group (no other
  member), as Debian's OpenSSH accepts it for ``~/.ssh``. A POSIX access list counts as much as the mode
  bits: an entry that lets another user or group write (through the mask) makes the folder untrusted, and an
  access list that cannot be read or parsed is refused (fail closed). Folders created here are ``0700``,
  files ``0600``, set with ``fchmod`` so no umask widens or empties them.
* **No link followed, no path re-read.** The folder is opened once with ``O_NOFOLLOW | O_DIRECTORY`` (a
  symbolic link given as the folder is refused, with where it points); every later step is relative to that
  descriptor (``openat``, ``renameat``, ``unlinkat``, ``fstatat``), so a folder above it renamed or replaced
  meanwhile cannot redirect a write. Files are opened with ``O_NOFOLLOW``; new ones with ``O_EXCL`` under a
  unique hidden temporary name in the same folder (same file system, so the rename is atomic), then renamed
  over the final name (a rename replaces a planted link or file; it never writes through it). A file is read
  only if it is a regular file of the user with a single link: no FIFO, device, link or hard link.
* **Files a library opens by path** (SQLite and its ``-wal``/``-shm``, a lock of pyrate-limiter's) live in a
  private folder of their own (:meth:`Folder.private`): ``0700``, and holding nothing but the user's own
  ``0600`` files of the expected names; a folder that already holds anything else is refused, so nobody can
  have planted a file the library would later open, nor kept one open from before.
* **Locks others cannot take.** A lock is a ``flock`` on a ``0600`` file inside the folder: only the user can
  create it there and only the user can open it. It is removed on release and a waiter checks it still holds
  the file at that name (inode), so lock files never pile up and a crash leaves nothing held (the kernel
  releases a dead process's ``flock``).
* **Names from the whole id.** :func:`stem` joins a readable prefix with 128 bits of the SHA-256 of the whole
  request id: ``T:1`` and ``T_1``, or two long ids sharing a prefix, never share a file, even on a
  case-insensitive file system.
* **Files read for their authority** (a configuration, an env file: :func:`read_trusted`) are refused, as
  OpenSSH refuses its own, when another user owns them or could change them or a folder above them (root's
  are fine).

A file found in a folder is never trusted for being there: :meth:`Folder.matches` checks it against a
:class:`FileRecord` the caller's signed state vouches for. Problems become the errors of the caller's
vocabulary (:class:`FileErrors`; a subclass of :class:`Folder` names its own, as the mParticle connector does
to raise its own error classes): an unsafe folder or file, a full disk (worth retrying), anything else.

This module holds :class:`Folder`; the rest lives in the modules named here, its names re-exported from this one:
errors (:mod:`~dsr_framework.file_errors`), names (:mod:`~dsr_framework.file_names`), opening by descriptor
(:mod:`~dsr_framework.file_opening`), who else could change a file (:mod:`~dsr_framework.file_trust`), new files
(:mod:`~dsr_framework.file_staging`) and locks (:mod:`~dsr_framework.folder_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, ClassVar, Self

from dsr_framework.file_errors import (
    ERRORS,
    FileError,
    FileErrors,
    NoSpaceError,
    UnsafePathError,
    file_error,
    translated,
)
from dsr_framework.file_names import DIGEST_CHARS, READABLE_CHARS, checked_name, folder_path, stem, temp_prefix
from dsr_framework.file_opening import DIR_FLAGS, LINK_ERRORS, NEW_FLAGS, READ_FLAGS, open_ancestor, open_child
from dsr_framework.file_staging import FileRecord, Staged
from dsr_framework.file_trust import acl_writers, read_trusted, unsafe_ancestor, untrusted
from dsr_framework.folder_lock import LOCK_POLL_SECONDS, FolderLock

__all__ = ["DIGEST_CHARS", "ERRORS", "LOCK_POLL_SECONDS", "READABLE_CHARS", "FileError", "FileErrors", "FileRecord",
           "Folder", "FolderLock", "NoSpaceError", "Staged", "UnsafePathError", "acl_writers", "file_error",
           "folder_path", "read_trusted", "stem"]


class Folder:
    """An open folder of the user's (see the module docstring); every file operation goes through it."""

    errors: ClassVar[FileErrors] = ERRORS  #: what problems become (a subclass may name its own)

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path  #: where it is, links above it resolved

    def __repr__(self) -> str:
        return f"Folder({str(self.path)!r})"

    @property
    def fd(self) -> int:
        """The open folder's descriptor, for its staged files and locks (closed by :meth:`close`, never by them)."""
        return self._fd

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> Self:
        """Open the folder at ``path`` (creating it and any missing parent, 0700, with ``create``).

        Raises ``errors.unsafe`` (:class:`UnsafePathError`) for a link, a file, a folder someone else owns or can
        write in, or one inside a folder others can change (see the module docstring).
        """
        target = folder_path(path)
        try:
            if target.parent == target:
                return cls._checked(os.open(target, DIR_FLAGS), target)
            if create:
                cls._refuse_early(target)
            parent = open_ancestor(target.parent, create, cls.errors)
            try:
                fd, created = open_child(parent, target.name, create, target, cls.errors)
                try:
                    return cls._checked(fd, target)
                except cls.errors.unsafe:
                    if created:  # refused for what is above it: leave nothing behind
                        with contextlib.suppress(OSError):
                            os.rmdir(target.name, dir_fd=parent)
                    raise
            finally:
                os.close(parent)
        except OSError as exc:
            raise cls.errors.from_os(exc, f"open the folder {target}") from None
        except ValueError:  # a NUL, or a lone surrogate the file system encoding cannot write
            raise cls.errors.unsafe(f"the folder {str(target)!r} cannot be a path here: it holds a NUL character or an "
                                  "unpaired surrogate") from None

    @classmethod
    def _refuse_early(cls, target: Path) -> None:
        """Refuse ``target`` before anything is created under a folder above it that others can change (checked
        again once the folder is open: :meth:`_trusted`)."""
        problem = unsafe_ancestor(Path(os.path.realpath(target)))
        if problem is not None:
            raise cls.errors.unsafe(f"the folder {target} {problem}")

    @classmethod
    def _checked(cls, fd: int, target: Path) -> Self:
        """:meth:`_trusted`, closing ``fd`` when the folder is refused."""
        try:
            return cls._trusted(fd, target)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _trusted(cls, fd: int, target: Path) -> Self:
        """The folder ``fd`` (opened as ``target``), once it is known to be the user's alone."""
        held = os.fstat(fd)
        problem = untrusted(held, fd)
        if problem is not None:
            raise cls.errors.unsafe(f"the folder {target} {problem}")
        real = target if target.parent == target else Path(os.path.realpath(target.parent)) / target.name
        try:
            now = os.stat(real, follow_symlinks=False)
            problem = unsafe_ancestor(real)
        except OSError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise cls.errors.unsafe(f"the folder {target} was moved or replaced while it was being opened; try again")
        if problem is not None:
            raise cls.errors.unsafe(f"the folder {target} {problem}")
        return cls(fd, real)

    @classmethod
    @contextlib.contextmanager
    def temporary(cls, prefix: str) -> Iterator[Self]:
        """A new private folder (``mkdtemp``: 0700, a fresh name) removed with everything in it afterwards."""
        with translated("create a temporary folder", cls.errors):
            made = tempfile.mkdtemp(prefix=prefix)
        try:
            with cls.open(made, create=False) as folder:
                yield folder
        finally:
            shutil.rmtree(made, ignore_errors=True)  # uses the fd-relative calls: it follows no link

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def path_of(self, name: str) -> Path:
        """Where ``name`` in this folder is, for results and messages (the folder never re-reads it)."""
        return self.path / checked_name(name)

    # -- writing --------------------------------------------------------------------------------------------

    def stage(self, name: str) -> Staged:
        """A new, empty ``0600`` file under a unique hidden name, renamed to ``name`` by :meth:`Staged.commit`."""
        final = checked_name(name)
        temp = f"{temp_prefix(final)}{secrets.token_hex(8)}.tmp"
        with translated(f"write in {self.path}", self.errors):
            fd = os.open(temp, NEW_FLAGS, 0o600, dir_fd=self._fd)
            os.fchmod(fd, 0o600)  # whatever the umask
        return Staged(self, final, temp, fd)

    def write(self, name: str, data: bytes) -> FileRecord:
        """Replace ``name`` with ``data`` atomically: readers see the old file or the new one, never a part."""
        staged = self.stage(name)
        try:
            staged.write(data)
            return staged.commit()
        finally:
            staged.discard()

    def remove(self, name: str) -> None:
        """Remove the entry ``name`` if it exists (a link is removed, never followed)."""
        with translated(f"remove {self.path_of(name)}", self.errors), contextlib.suppress(FileNotFoundError):
            os.unlink(checked_name(name), dir_fd=self._fd)

    def sweep(self, names: Iterable[str]) -> int:
        """Remove temporary files a crashed writer left for ``names``; call it holding their lock. Whatever sits
        under exactly those temporary names goes, folders aside (a link is removed, never followed; nothing is
        opened); returns how many."""
        patterns = [re.compile(re.escape(temp_prefix(checked_name(n))) + r"[0-9a-f]{16}\.tmp") for n in names]
        with translated(f"list {self.path}", self.errors):
            entries = os.listdir(self._fd)
        removed = 0
        for entry in entries:
            if not any(p.fullmatch(entry) for p in patterns):
                continue
            with contextlib.suppress(OSError):
                if not stat.S_ISDIR(os.stat(entry, dir_fd=self._fd, follow_symlinks=False).st_mode):
                    os.unlink(entry, dir_fd=self._fd)
                    removed += 1
        return removed

    def probe(self) -> None:
        """Prove that a file can be created here (read-only folders and file systems fail now, not later)."""
        self.stage("write-probe").discard()

    def ensure(self, name: str) -> Path:
        """Make sure ``name`` is a ``0600`` regular file of the user's with one link (created empty if missing,
        ``O_EXCL``; an existing one is checked, never tightened or followed); its path, for a library that
        opens files by path (SQLite) inside a :meth:`private` folder."""
        shown = self.path_of(name)
        with translated(f"create {shown}", self.errors):
            try:
                fd = os.open(name, NEW_FLAGS, 0o600, dir_fd=self._fd)
                os.fchmod(fd, 0o600)  # whatever the umask
                os.close(fd)
                return shown
            except FileExistsError:
                pass
        if not self._only_mine(name):  # removed since: another process of ours is tidying up
            raise self.errors.other(f"cannot create {shown}: it was removed meanwhile; try again")
        return shown

    def _only_mine(self, name: str) -> bool:
        """False when ``name`` is absent; True when it is a regular file of the user's with one link that no one
        else may open (no group or other bits); refused otherwise."""
        fd = self._open_own(name)
        if fd is None:
            return False
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        os.close(fd)
        if mode & 0o077:
            raise self.errors.unsafe(f"{self.path_of(name)} can be read or written by others (mode {mode:o}); "
                                     "remove it, or chmod 600 it if nobody else could have opened it")
        return True

    def private(self, name: str, allowed: Callable[[str], bool]) -> Self:
        """The folder ``name`` inside this one, for files a library opens by path (SQLite and its ``-wal`` and
        ``-shm``): created ``0700``; an existing one must be the user's, open to nobody else (mode ``0700``,
        refused otherwise, never tightened) and hold only entries ``allowed`` accepts, each a ``0600`` regular
        file of the user's with one link. Anything else there is refused: it may have been planted, or opened
        by someone, while the folder was open."""
        shown = self.path_of(name)
        with translated(f"open the folder {shown}", self.errors):
            fd, _ = open_child(self._fd, checked_name(name), True, shown, self.errors)
        inner = type(self)._checked(fd, shown)
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                raise self.errors.unsafe(f"the folder {shown} is open to others (mode {mode:o}); it must be 0700 "
                                         "and hold only this program's files: remove it and run again")
            for entry in sorted(os.listdir(fd)):
                inner._vouch(entry, allowed)
        except BaseException:
            inner.close()
            raise
        return inner

    def _vouch(self, entry: str, allowed: Callable[[str], bool]) -> None:
        """Refuse ``entry`` of a :meth:`private` folder unless it is expected and only the user could have opened
        it (see there)."""
        if not allowed(entry):
            raise self.errors.unsafe(f"the folder {self.path} holds {entry!r}, which this program did not "
                                     "create; only its own files may be there (remove the folder and run again)")
        self._only_mine(entry)

    # -- reading --------------------------------------------------------------------------------------------

    def _open_own(self, name: str) -> int | None:
        """A descriptor on ``name`` if it is a regular file of the user's with one link; None if absent."""
        shown = self.path_of(name)
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=self._fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in LINK_ERRORS:
                raise self.errors.unsafe(f"{shown} is a symbolic link; links are not followed") from None
            raise self.errors.from_os(exc, f"read {shown}") from None
        st = os.fstat(fd)
        why = ("is not a regular file" if not stat.S_ISREG(st.st_mode) else
               "belongs to another user" if st.st_uid != os.geteuid() else
               "has other hard links (copy it instead)" if st.st_nlink != 1 else None)
        if why is not None:
            os.close(fd)
            raise self.errors.unsafe(f"{shown} {why}")
        return fd

    def read(self, name: str, max_bytes: int) -> bytes | None:
        """The bytes of ``name`` (None when there is no such entry); :class:`UnsafePathError` for a link, a FIFO,
        a device, another user's file, a hard-linked file, or one larger than ``max_bytes``."""
        fd = self._open_own(name)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise self.errors.unsafe(f"{self.path_of(name)} is larger than {max_bytes} bytes")
        return data

    def reader(self, name: str) -> BinaryIO | None:
        """A handle reading ``name`` from its start, for files too large to read whole (None when there is no such
        entry); refused as :meth:`read` refuses."""
        fd = self._open_own(name)
        return os.fdopen(fd, "rb") if fd is not None else None

    def matches(self, record: FileRecord) -> bool:
        """True when ``record.name`` is a regular file of the user's, with one link, holding exactly the bytes
        ``record`` describes. Anything else (missing, a link, changed, planted) is False."""
        try:
            fd = self._open_own(record.name)
        except self.errors.refusals:
            return False
        if fd is None:
            return False
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != record.size:
                return False
            digest = hashlib.sha256()
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest() == record.sha256

    # -- locking --------------------------------------------------------------------------------------------

    def lock(self, name: str) -> FolderLock:
        """The lock for ``name`` (not taken yet: :meth:`FolderLock.acquire`)."""
        return FolderLock(self, checked_name(name))

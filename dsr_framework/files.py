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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, ClassVar, Self

__all__ = ["ERRORS", "FileError", "FileErrors", "FileRecord", "Folder", "FolderLock", "NoSpaceError", "Staged",
           "UnsafePathError", "acl_writers", "file_error", "folder_path", "read_trusted", "stem"]

DIGEST_CHARS = 32  #: hex characters of SHA-256 in a name: 128 bits
READABLE_CHARS = 40  #: characters of the request id kept readable in a name
LOCK_POLL_SECONDS = 0.05
_KIND = re.compile(r"[a-z][a-z0-9-]*")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO must not hang us
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LINK_ERRORS = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)  # O_NOFOLLOW met a link (EMLINK on the BSDs)
_FULL = (errno.ENOSPC, errno.EDQUOT)
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK = 0x02, 0x04, 0x08, 0x10  # acl(5) tags, as <linux/posix_acl.h>
_ACL_WRITE = 0x02
_NO_ACL = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)  # none set; a file system without access lists


class FileError(Exception):
    """A file or folder that cannot be used (the framework's own vocabulary: :data:`ERRORS`); the message is safe
    to show and never holds a file's content."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsafePathError(FileError):
    """A folder or file that will not be used; the message says why and what to do instead."""


class NoSpaceError(FileError):
    """The disk (or the user's quota) is full: worth trying again later, the request is not at fault."""


@dataclass(frozen=True)
class FileErrors:
    """The exception classes problems become: a folder or file refused, a full disk, anything else. Each takes
    the message as its one positional argument."""

    unsafe: type[Exception]
    no_space: type[Exception]
    other: type[Exception]

    @property
    def refusals(self) -> tuple[type[Exception], ...]:
        """Everything a read may raise for a file that is not there as expected (``ValueError``: a bad name)."""
        return self.unsafe, self.no_space, self.other, ValueError

    def from_os(self, exc: OSError, what: str) -> Exception:
        """An operating-system error while doing ``what``: a full disk is worth retrying, the rest is not."""
        reason = exc.strerror or type(exc).__name__
        return (self.no_space if exc.errno in _FULL else self.other)(f"cannot {what}: {reason}")


ERRORS = FileErrors(UnsafePathError, NoSpaceError, FileError)  #: the framework's own


def stem(kind: str, request_id: str, subject: str) -> str:
    """``KIND-READABLE-DIGEST``: the start of every file name for one request about one subject.

    READABLE is the id's first :data:`READABLE_CHARS` characters with anything but ``A-Z a-z 0-9 . _ -``
    replaced by ``_``; DIGEST is 128 bits of the SHA-256 of the whole id (any Unicode, any length) and of
    ``subject`` (a digest of who the request is about), so two different ids never share a name, and neither
    does a request id a host reused for another subject: that request never overwrites, nor is handed, the first
    subject's files. Suffixes added to a stem must start with ``-`` or ``.`` (never a hex digit), so no stem plus
    suffix equals another stem plus another suffix.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"not a file kind: {kind!r}")
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", request_id[:READABLE_CHARS])
    whole = json.dumps([request_id, subject], ensure_ascii=True)  # unambiguous: no separator can be forged
    digest = hashlib.sha256(whole.encode("ascii")).hexdigest()[:DIGEST_CHARS]
    return f"{kind}-{readable}-{digest}"


def folder_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute the way a person reads it (``..`` removed by text), its last part not followed."""
    return Path(os.path.abspath(os.fspath(path)))


def _checked_name(name: str) -> str:
    """``name`` if it names an entry of a folder, not a path or a special entry."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(os.fsencode(name)) > 255:
        raise ValueError("not a usable file name (empty, . or .., holding a / or a NUL character, or longer than "
                         "255 bytes)")
    return name


def _short(name: str) -> str:
    """``name``, or for a long one (over 200 bytes) its digest: what the names derived from it start with, so
    every derived name (``.NAME.….tmp``, ``.NAME.lock``) stays under the file systems' 255 bytes."""
    return name if len(os.fsencode(name)) <= 200 else hashlib.sha256(os.fsencode(name)).hexdigest()[:32]


def _temp_prefix(name: str) -> str:
    """The start of the hidden temporary names of ``name``."""
    return f".{_short(name)}."


def file_error(exc: OSError, what: str) -> Exception:
    """An operating-system error while doing ``what`` in the framework's vocabulary (:data:`ERRORS`)."""
    return ERRORS.from_os(exc, what)


@contextlib.contextmanager
def _translated(what: str, errors: FileErrors) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise errors.from_os(exc, what) from None


def _private_group(gid: int, uid: int) -> bool:
    """True when group ``gid`` has no member but the user ``uid`` (a user-private group, as on Debian and
    Ubuntu where ``umask 002`` makes new folders group-writable)."""
    try:
        user = pwd.getpwuid(uid).pw_name
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return False
    primary = [p.pw_uid for p in pwd.getpwall() if p.pw_gid == gid]
    return members <= {user} and all(p == uid for p in primary) and bool(primary or members)


def acl_writers(raw: bytes, owner: int, group: int) -> list[str] | None:
    """Who, besides ``owner`` and root, the POSIX access list ``raw`` lets write: ``["user 1001", "group 50"]``
    (a group is left out when it is the owner's private one); None when ``raw`` cannot be parsed.

    ``raw`` is the ``system.posix_acl_access`` extended attribute as Linux stores it: a little-endian ``u32``
    version (2), then entries of ``u16`` tag, ``u16`` permissions, ``u32`` id. Named users, named groups and the
    owning group get only what the mask entry also grants (acl(5)); the owner's entry and "other" are what
    the mode bits show.
    """
    writing = _acl_writing(raw)
    if writing is None:
        return None
    users = [f"user {ident}" for tag, ident in writing if tag == _ACL_USER and ident not in (owner, 0)]
    gids = [group if tag == _ACL_GROUP_OBJ else ident for tag, ident in writing if tag in (_ACL_GROUP, _ACL_GROUP_OBJ)]
    return users + [f"group {gid}" for gid in gids if not _private_group(gid, owner)]


def _acl_writing(raw: bytes) -> list[tuple[int, int]] | None:
    """``(tag, id)`` of each entry of the access list ``raw`` that grants write once masked; None if malformed."""
    if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != _ACL_VERSION:
        return None
    entries = [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 0o7)
    return [(tag, ident) for tag, perm, ident in entries if perm & mask & _ACL_WRITE]


def _access_list(where: int | Path) -> bytes | None:
    """The access list of ``where`` (a descriptor, or a path not followed), None when it has none or the file
    system keeps none; :class:`OSError` when it cannot be read."""
    try:
        if isinstance(where, int):
            return os.getxattr(where, _ACL_XATTR)
        return os.getxattr(where, _ACL_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_ACL:
            return None
        raise


def _other_writers(st: os.stat_result, where: int | Path) -> str | None:
    """Who besides the owner can write in the folder or file ``where`` (status ``st``), by its mode bits and its
    access list, or None. Fails closed: an access list that cannot be read or parsed names "possibly anyone"."""
    if st.st_mode & stat.S_IWOTH:
        return "every user"
    try:
        acl = _access_list(where)
    except OSError as exc:
        return f"possibly anyone (its access list cannot be read: {exc.strerror or type(exc).__name__})"
    if acl is None:  # no access list: the group bits are the group's
        group_writes = st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid, st.st_uid)
        return "other members of its group" if group_writes else None
    writers = acl_writers(acl, st.st_uid, st.st_gid)
    if writers is None:
        return "possibly anyone (its access list cannot be parsed)"
    return f"{', '.join(writers)} (its access list says so)" if writers else None


_MOVED_FOLDER = "the folder away and put other files where the results are said to be"
_FIX = {"every user": "chmod o-w", "other members of its group": "chmod g-w"}


def _untrusted(st: os.stat_result, where: int | Path) -> str | None:
    """Why a folder with status ``st`` must not hold the user's files, or None when it may."""
    if st.st_uid != os.geteuid():
        return (f"belongs to another user (uid {st.st_uid}), who could read the names and swap the files; "
                "use a folder of your own")
    who = _other_writers(st, where)
    if who is None:
        return None
    return (f"can be written by {who}, who could plant files or hold its locks; use a folder only you can write "
            f"({_FIX.get(who, 'setfacl -b')}, or mkdir -m 700 a new one)")


def _unsafe_ancestor(real: Path, moved: str = _MOVED_FOLDER) -> str | None:
    """Why a folder above ``real`` lets another user move the folder away (and put other files where the
    results are said to be), or None. Like OpenSSH's ``safe_path``: each must belong to root or the user and be
    writable by no one else (mode bits and access list), unless sticky (``/tmp``: others cannot move what is
    not theirs)."""
    me = os.geteuid()
    for parent in real.parents:
        try:
            st = os.lstat(parent)
        except FileNotFoundError:  # not created yet (checked before creating): it will be ours, 0700
            continue
        if st.st_uid not in (0, me):
            return f"lies in {parent}, which belongs to another user (uid {st.st_uid}), who could move it away"
        if not st.st_mode & stat.S_ISVTX and _other_writers(st, parent) is not None:
            return (f"lies in {parent}, which other users can change (they could move {moved}); use a folder "
                    "under one only you control")
    return None


def _refused(exc: OSError, parent: int, name: str, shown: Path, errors: FileErrors) -> Exception:
    """Why ``name`` in ``parent`` could not be opened as a folder: a link, not a folder, or the system's reason."""
    if exc.errno in _LINK_ERRORS:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                target = os.readlink(name, dir_fd=parent)
                return errors.unsafe(f"{shown} is a symbolic link (to {target}); links are not followed, so "
                                     "give the folder itself")
        return errors.unsafe(f"{shown} is not a folder")
    return errors.from_os(exc, f"open the folder {shown}")


def _open_child(parent: int, name: str, create: bool, shown: Path, errors: FileErrors) -> tuple[int, bool]:
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
        fd = os.open(name, _DIR, dir_fd=parent)
    except OSError as exc:
        raise _refused(exc, parent, name, shown, errors) from None
    if created:
        os.fchmod(fd, 0o700)  # whatever the umask
    return fd, created


def _open_ancestor(path: Path, create: bool, errors: FileErrors) -> int:
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
            child, _ = _open_child(fd, name, True, current, errors)
        finally:
            os.close(fd)
        fd = child
    return fd


@dataclass(frozen=True)
class FileRecord:
    """What was written: a name in a folder, its size and its SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


class Folder:
    """An open folder of the user's (see the module docstring); every file operation goes through it."""

    errors: ClassVar[FileErrors] = ERRORS  #: what problems become (a subclass may name its own)

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path  #: where it is, links above it resolved

    def __repr__(self) -> str:
        return f"Folder({str(self.path)!r})"

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> Self:
        """Open the folder at ``path`` (creating it and any missing parent, 0700, with ``create``).

        Raises ``errors.unsafe`` (:class:`UnsafePathError`) for a link, a file, a folder someone else owns or can
        write in, or one inside a folder others can change (see the module docstring).
        """
        target = folder_path(path)
        try:
            if target.parent == target:
                return cls._checked(os.open(target, _DIR), target)
            if create:
                cls._refuse_early(target)
            parent = _open_ancestor(target.parent, create, cls.errors)
            try:
                fd, created = _open_child(parent, target.name, create, target, cls.errors)
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
        problem = _unsafe_ancestor(Path(os.path.realpath(target)))
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
        problem = _untrusted(held, fd)
        if problem is not None:
            raise cls.errors.unsafe(f"the folder {target} {problem}")
        real = target if target.parent == target else Path(os.path.realpath(target.parent)) / target.name
        try:
            now = os.stat(real, follow_symlinks=False)
            problem = _unsafe_ancestor(real)
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
        with _translated("create a temporary folder", cls.errors):
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
        return self.path / _checked_name(name)

    # -- writing --------------------------------------------------------------------------------------------

    def stage(self, name: str) -> Staged:
        """A new, empty ``0600`` file under a unique hidden name, renamed to ``name`` by :meth:`Staged.commit`."""
        final = _checked_name(name)
        temp = f"{_temp_prefix(final)}{secrets.token_hex(8)}.tmp"
        with _translated(f"write in {self.path}", self.errors):
            fd = os.open(temp, _NEW, 0o600, dir_fd=self._fd)
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
        with _translated(f"remove {self.path_of(name)}", self.errors), contextlib.suppress(FileNotFoundError):
            os.unlink(_checked_name(name), dir_fd=self._fd)

    def sweep(self, names: Iterable[str]) -> int:
        """Remove temporary files a crashed writer left for ``names``; call it holding their lock. Whatever sits
        under exactly those temporary names goes, folders aside (a link is removed, never followed; nothing is
        opened); returns how many."""
        patterns = [re.compile(re.escape(_temp_prefix(_checked_name(n))) + r"[0-9a-f]{16}\.tmp") for n in names]
        with _translated(f"list {self.path}", self.errors):
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
        with _translated(f"create {shown}", self.errors):
            try:
                fd = os.open(name, _NEW, 0o600, dir_fd=self._fd)
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
        with _translated(f"open the folder {shown}", self.errors):
            fd, _ = _open_child(self._fd, _checked_name(name), True, shown, self.errors)
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
            fd = os.open(name, _READ, dir_fd=self._fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in _LINK_ERRORS:
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
        return FolderLock(self, _checked_name(name))


class Staged:
    """A new file of a folder under a hidden temporary name, until :meth:`commit` renames it into place.

    :meth:`discard` (always safe to call, also after a commit) removes it; a process killed before either
    leaves a hidden ``.NAME.….tmp`` that :meth:`Folder.sweep` removes later.
    """

    def __init__(self, folder: Folder, name: str, temp: str, fd: int) -> None:
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
        with _translated(f"write in {self.folder.path}", self.folder.errors), self.open() as handle:
            handle.write(data)

    def reader(self) -> BinaryIO:
        """A handle reading the file from its start (the descriptor the file was created with, never a path)."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        return os.fdopen(os.dup(self._fd), "rb")

    def commit(self) -> FileRecord:
        """Make the file durable, rename it over ``name`` (inside the folder) and return what it holds."""
        with _translated(f"write {self.folder.path_of(self.name)}", self.folder.errors):
            os.fsync(self._fd)
            digest, size = hashlib.sha256(), 0
            with self.reader() as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
            folder = self.folder._fd
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
            os.unlink(self._temp, dir_fd=self.folder._fd)


class FolderLock:
    """An exclusive lock named after a file of a folder (see the module docstring), with a note saying who
    holds it. Use as a context manager after :meth:`acquire`; leaving it releases the lock."""

    def __init__(self, folder: Folder, name: str) -> None:
        self.folder = folder
        self._name = f".{_short(name)}.lock"
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
        folder = self.folder._fd
        with _translated(f"lock {self.folder.path_of(self._name)}", self.folder.errors):
            while True:
                try:
                    fd = os.open(self._name, _LOCK, 0o600, dir_fd=folder)
                except PermissionError:  # another process of ours created it a moment ago, before its fchmod
                    return False
                except OSError as exc:
                    if exc.errno in _LINK_ERRORS:
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
            os.unlink(self._name, dir_fd=self.folder._fd)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def read_trusted(path: str | os.PathLike[str], max_bytes: int, what: str = "file",
                 errors: FileErrors = ERRORS) -> bytes:
    """The bytes of a file that gives orders (a configuration, an env file), refused as OpenSSH refuses its
    own: unless it is a regular file of the user's or root's that no one else can change (mode bits and access
    list), in folders no one else can change (sticky ones like ``/tmp`` aside). Links are followed (where a
    link leads is what is checked); larger than ``max_bytes`` is refused. Messages say what is wrong, not which
    file: the caller names it."""
    try:
        real = Path(os.path.realpath(path))
        fd = os.open(real, _READ)
    except (OSError, ValueError) as exc:
        raise errors.other(f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as handle:
        problem = _untrusted_file(os.fstat(fd), fd, real)
        if problem is not None:
            raise errors.unsafe(f"{problem}; the {what} is not used (as ssh refuses such files)")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise errors.unsafe(f"larger than {max_bytes} bytes; the {what} is not used")
    return data


def _untrusted_file(st: os.stat_result, fd: int, real: Path) -> str | None:
    """Why a file that gives orders must not be trusted (see :func:`read_trusted`), or None."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid not in (0, os.geteuid()):
        return f"belongs to another user (uid {st.st_uid}), who could change what it says"
    who = _other_writers(st, fd)
    if who is not None:
        return f"can be changed by {who} (chmod go-w, setfacl -b)"
    return _unsafe_ancestor(real, "it away and put another file in its place")

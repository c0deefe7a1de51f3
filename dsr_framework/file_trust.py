"""Whether a folder or file is the user's alone: who else could write it (mode bits and POSIX access lists, failing
closed), whether a folder above lets another user move it away, and files that give orders (:func:`read_trusted`),
refused as OpenSSH refuses its own.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import struct
from pathlib import Path

from dsr_framework.file_errors import ERRORS, FileErrors
from dsr_framework.file_opening import READ_FLAGS

__all__ = ["MOVED_FOLDER", "acl_writers", "other_writers", "private_group", "read_trusted", "unsafe_ancestor",
           "untrusted"]

_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK = 0x02, 0x04, 0x08, 0x10  # acl(5) tags, as <linux/posix_acl.h>
_ACL_WRITE = 0x02
_NO_ACL = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)  # none set; a file system without access lists


def private_group(gid: int, uid: int) -> bool:
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
    return users + [f"group {gid}" for gid in gids if not private_group(gid, owner)]


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


def other_writers(st: os.stat_result, where: int | Path) -> str | None:
    """Who besides the owner can write in the folder or file ``where`` (status ``st``), by its mode bits and its
    access list, or None. Fails closed: an access list that cannot be read or parsed names "possibly anyone"."""
    if st.st_mode & stat.S_IWOTH:
        return "every user"
    try:
        acl = _access_list(where)
    except OSError as exc:
        return f"possibly anyone (its access list cannot be read: {exc.strerror or type(exc).__name__})"
    if acl is None:  # no access list: the group bits are the group's
        group_writes = st.st_mode & stat.S_IWGRP and not private_group(st.st_gid, st.st_uid)
        return "other members of its group" if group_writes else None
    writers = acl_writers(acl, st.st_uid, st.st_gid)
    if writers is None:
        return "possibly anyone (its access list cannot be parsed)"
    return f"{', '.join(writers)} (its access list says so)" if writers else None


MOVED_FOLDER = "the folder away and put other files where the results are said to be"
_FIX = {"every user": "chmod o-w", "other members of its group": "chmod g-w"}


def untrusted(st: os.stat_result, where: int | Path) -> str | None:
    """Why a folder with status ``st`` must not hold the user's files, or None when it may."""
    if st.st_uid != os.geteuid():
        return (f"belongs to another user (uid {st.st_uid}), who could read the names and swap the files; "
                "use a folder of your own")
    who = other_writers(st, where)
    if who is None:
        return None
    return (f"can be written by {who}, who could plant files or hold its locks; use a folder only you can write "
            f"({_FIX.get(who, 'setfacl -b')}, or mkdir -m 700 a new one)")


def unsafe_ancestor(real: Path, moved: str = MOVED_FOLDER) -> str | None:
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
        if not st.st_mode & stat.S_ISVTX and other_writers(st, parent) is not None:
            return (f"lies in {parent}, which other users can change (they could move {moved}); use a folder "
                    "under one only you control")
    return None


def read_trusted(path: str | os.PathLike[str], max_bytes: int, what: str = "file",
                 errors: FileErrors = ERRORS) -> bytes:
    """The bytes of a file that gives orders (a configuration, an env file), refused as OpenSSH refuses its
    own: unless it is a regular file of the user's or root's that no one else can change (mode bits and access
    list), in folders no one else can change (sticky ones like ``/tmp`` aside). Links are followed (where a
    link leads is what is checked); larger than ``max_bytes`` is refused. Messages say what is wrong, not which
    file: the caller names it."""
    try:
        real = Path(os.path.realpath(path))
        fd = os.open(real, READ_FLAGS)
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
    who = other_writers(st, fd)
    if who is not None:
        return f"can be changed by {who} (chmod go-w, setfacl -b)"
    return unsafe_ancestor(real, "it away and put another file in its place")

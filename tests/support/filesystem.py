"""Real file-system states for the output-folder tests: plant entries, take snapshots that follow no link.

Another local user is simulated where the test runs as root (``chown`` to :data:`OTHER_UID`, or a child process
that drops to it); elsewhere those cases are skipped, never faked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

IS_ROOT = os.geteuid() == 0
OTHER_UID = 65534  #: "nobody": another local user
UNKNOWN_GID = 54321  #: a group no user belongs to (so a group-writable folder is writable by "others")
MARKER = b"PLANTED-BY-ANOTHER-USER"

#: What can already sit at a name: each plants it at ``path`` (``outside`` holds the targets of links).
PLANTED_KINDS = ("file", "symlink_to_file", "symlink_to_dir", "dangling_symlink", "directory", "fifo", "hardlink",
                 "other_owner_file", "world_writable_file", "forged_json", "deeply_nested_json")


def plant(path: Path, kind: str, outside: Path) -> None:
    """Put an entry of ``kind`` at ``path`` (its targets are ``outside/bait.txt`` and ``outside/dir``)."""
    makers: dict[str, Callable[[], Any]] = {
        "file": lambda: path.write_bytes(MARKER),
        "symlink_to_file": lambda: path.symlink_to(outside / "bait.txt"),
        "symlink_to_dir": lambda: path.symlink_to(outside / "dir", target_is_directory=True),
        "dangling_symlink": lambda: path.symlink_to(outside / "nothing-here"),
        "directory": lambda: path.mkdir(),
        "fifo": lambda: os.mkfifo(path),
        "hardlink": lambda: os.link(outside / "bait.txt", path),
        "other_owner_file": lambda: _other_owner_file(path),
        "world_writable_file": lambda: (path.write_bytes(MARKER), path.chmod(0o666)),
        # a record-shaped document whose MAC is not ASCII, and one nested deeper than any parser goes
        "forged_json": lambda: path.write_text('{"v": 3, "parts": [], "delivered": [], "mac": "' + "\u00e9" * 64
                                               + '", "note": "' + MARKER.decode() + '"}'),
        "deeply_nested_json": lambda: path.write_bytes(b"[" * 200_000 + MARKER + b"]" * 200_000),
    }
    makers[kind]()


def _other_owner_file(path: Path) -> None:
    path.write_bytes(MARKER)
    if IS_ROOT:
        os.chown(path, OTHER_UID, OTHER_UID)


def make_outside(base: Path) -> Path:
    """A folder of bait the connector must never touch: a file, a folder, each reachable by planted links."""
    outside = base / "outside"
    outside.mkdir(mode=0o700)
    (outside / "bait.txt").write_bytes(MARKER + b" bait")
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.txt").write_bytes(MARKER + b" inner")
    return outside


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (``root`` itself included): type, mode, owner, size and content digest or link
    target. Follows no link. (Link counts are left out: replacing a planted hard link rightly lowers its
    target's count without touching it.)"""
    found: dict[str, tuple[Any, ...]] = {}

    def record(path: Path) -> None:
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        detail: Any = None
        if stat.S_ISLNK(st.st_mode):
            detail = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            detail = hashlib.sha256(path.read_bytes()).hexdigest() if os.access(path, os.R_OK) else "unreadable"
        found[str(path.relative_to(root.parent))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_size, detail)
        if stat.S_ISDIR(st.st_mode):
            for child in sorted(path.iterdir()):
                record(child)

    if os.path.lexists(root):
        record(root)
    return found


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def as_other_user(action: Callable[[], int]) -> int:
    """Run ``action`` in a child process that has become :data:`OTHER_UID` (root only); its return value
    (0-255) is the child's exit status, returned here."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.setgroups([])
            os.setgid(OTHER_UID)
            os.setuid(OTHER_UID)
            code = action()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


FOLDER_KINDS = ("absent", "private", "readable", "group_writable", "world_writable", "sticky_world_writable",
                "other_owner", "symlink_to_folder", "dangling_symlink", "file", "fifo", "in_shared_parent",
                "in_sticky_parent", "in_other_users_parent", "in_shared_parent_absent")


#: Folder states only root can make (chown to another user or group).
NEEDS_ROOT = ("other_owner", "group_writable", "in_other_users_parent")


def make_folder(base: Path, kind: str) -> Path:
    """The output folder ``base/out`` in the state ``kind`` (links point into ``base/outside``)."""
    out = base / "out"
    outside = base / "outside"
    if kind.startswith("in_"):  # a private folder of ours, inside a folder others may change (or not: sticky)
        out.mkdir()
        out.chmod({"in_shared_parent": 0o777, "in_sticky_parent": 0o1777, "in_other_users_parent": 0o755,
                   "in_shared_parent_absent": 0o777}[kind])
        if kind != "in_shared_parent_absent":  # else the connector is asked to create it there
            (out / "inner").mkdir(mode=0o700)
        if kind == "in_other_users_parent":
            os.chown(out, OTHER_UID, OTHER_UID)
        return out / "inner"
    if kind in ("private", "readable", "group_writable", "world_writable", "sticky_world_writable", "other_owner"):
        out.mkdir()
        modes = {"private": 0o700, "readable": 0o755, "group_writable": 0o770, "world_writable": 0o777,
                 "sticky_world_writable": 0o1777, "other_owner": 0o755}
        out.chmod(modes[kind])
        if kind == "group_writable":
            os.chown(out, -1, UNKNOWN_GID)
        if kind == "other_owner":
            os.chown(out, OTHER_UID, OTHER_UID)
    elif kind == "symlink_to_folder":
        out.symlink_to(outside / "dir", target_is_directory=True)
    elif kind == "dangling_symlink":
        out.symlink_to(outside / "nothing-here")
    elif kind == "file":
        out.write_bytes(MARKER)
    elif kind == "fifo":
        os.mkfifo(out)
    return out


def usable(kind: str) -> bool:
    """The oracle: may the connector write in a folder of this kind? (written from the promise, not the code)"""
    return kind in ("absent", "private", "readable", "in_sticky_parent")

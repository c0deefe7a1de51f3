"""Where the connector touches the file system, seen by audit hooks (PEP 578) rather than by listing folders.

A listing compared before and after sees only the folders it lists, and only what is still there at the end.
The audit events ``open`` (in a writing mode), ``os.rename`` (also ``os.replace``), ``os.remove``,
``os.rmdir``, ``os.mkdir``, ``os.link``, ``os.symlink``, ``os.truncate``, ``os.chmod``, ``shutil.rmtree``,
``tempfile.mkstemp``/``mkdtemp`` and ``sqlite3.connect`` name every path, anywhere: an absolute path, ``~/.cache``,
a plaintext staging copy in the temporary folder removed a moment later. While a :class:`FileWatch` is active,
such an event from one of the connector's threads (:mod:`~dsr_framework.conformance.threads`) is recorded, and
blocked (:class:`WriteBlocked`, an ``OSError``) unless its path lies inside an allowed folder (the request's
output directories): the host machine is protected, not only judged. Byte-code caches written by the import
system (``__pycache__``) and ``os.devnull`` are ignored.

The ``open`` event, alone among them, does not carry the ``dir_fd`` a path is relative to, so a file created
with ``os.open(name, …, dir_fd=folder)`` (the safe way to write inside a folder that cannot be swapped) would be
judged against the working directory. :func:`install` therefore wraps ``os.open`` once, for the life of the
process like the audit hook itself: the wrapper tells the hook, per thread, which folder the call is relative to.

What it cannot see: native code writing without these functions, and files opened before the watch began.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsr_framework.conformance import audit, threads

__all__ = ["FileWatch", "Touch", "WriteBlocked", "install"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: event -> (what it does to its path, the argument holding the path, the argument holding its dir_fd)
_PATH_EVENTS: dict[str, tuple[str, int, int | None]] = {
    "os.remove": ("removed", 0, 1), "os.rmdir": ("removed", 0, 1), "os.mkdir": ("created", 0, 2),
    "os.truncate": ("wrote", 0, None), "os.chmod": ("changed the mode of", 0, 2),
    "shutil.rmtree": ("removed", 0, None), "tempfile.mkstemp": ("created", 0, None),
    "tempfile.mkdtemp": ("created", 0, None), "sqlite3.connect": ("opened a database at", 0, None),
}
_PAIR_EVENTS = {"os.rename": "renamed", "os.link": "linked", "os.symlink": "linked"}
_active: FileWatch | None = None
_opening = threading.local()  #: ``dir_fd`` of the ``os.open`` call running in this thread, if any
_real_open = os.open
_install_lock = threading.Lock()


def _open_in(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    """``os.open``, first telling the audit hook which folder a relative ``path`` is in (``dir_fd``)."""
    previous = getattr(_opening, "dir_fd", None)
    _opening.dir_fd = dir_fd
    try:
        return _real_open(path, flags, mode, dir_fd=dir_fd)
    finally:
        _opening.dir_fd = previous


def install() -> None:
    """Add the audit hook and the ``dir_fd``-telling ``os.open`` to this process, once (call it before any
    snapshot of the process's functions is taken: both stay for the life of the process)."""
    audit.install()
    threads.install()
    with _install_lock:
        if os.open is _real_open:
            os.open = _open_in


class WriteBlocked(PermissionError):
    """The conformance harness blocked a write (or removal) outside the folders the connector may write in."""


@dataclass(frozen=True)
class Touch:
    """One thing the connector did to a path: ``what`` is ``wrote``, ``removed``, ``renamed`` …"""

    what: str
    path: str


def _text(value: Any) -> str | None:
    if isinstance(value, int) or value is None:
        return None  # a file descriptor: opened earlier, already judged
    try:
        return os.fsdecode(os.fspath(value))
    except TypeError:
        return None


def _where(value: Any, dir_fd: Any = None) -> str | None:
    """The absolute, resolved path an event names (relative to its ``dir_fd`` when it has one)."""
    path = _text(value)
    if path is None or path in ("", ":memory:") or path.startswith("file::memory:"):
        return None
    if not os.path.isabs(path) and isinstance(dir_fd, int) and dir_fd >= 0:
        with contextlib.suppress(OSError):  # Linux names an open directory under /proc/self/fd
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.realpath(path)


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _opened(args: tuple[Any, ...]) -> list[Touch]:
    """``open(path, mode, flags)``: a write, if the mode or flags write."""
    writes = len(args) > 2 and _writes(args[1], args[2])
    path = _where(args[0], getattr(_opening, "dir_fd", None)) if writes else None
    if path is None:
        return []
    if os.path.isdir(path):  # an unnamed temporary file (O_TMPFILE) in that folder
        return [Touch("wrote a temporary file in", path)]
    return [Touch("wrote", path)]


def _paired(event: str, args: tuple[Any, ...]) -> list[Touch]:
    """``(source, target, [source_dir_fd,] target_dir_fd)``: the target is created; a renamed source is gone."""
    found = [(_PAIR_EVENTS[event], _where(args[1], args[-1] if len(args) > 2 else None))]
    if event == "os.rename":
        found.append(("removed", _where(args[0], args[2] if len(args) > 3 else None)))
    return [Touch(what, path) for what, path in found if path]


def _touches(event: str, args: tuple[Any, ...]) -> list[Touch]:
    """What ``event`` does, path by path (empty for a read)."""
    if event == "open":
        return _opened(args)
    if event in _PAIR_EVENTS:
        return _paired(event, args)
    what, at, fd_at = _PATH_EVENTS[event]
    path = _where(args[at], args[fd_at] if fd_at is not None and len(args) > fd_at else None)
    return [Touch(what, path)] if path else []


def _ignored(path: str) -> bool:
    return path == os.devnull or "__pycache__" in Path(path).parts


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass
class FileWatch:
    """Records every path the connector's threads write or remove, and blocks those outside ``allowed``."""

    allowed: list[str] = field(default_factory=list)
    label: str = "the connector"
    touched: list[Touch] = field(default_factory=list)
    outside: list[Touch] = field(default_factory=list)

    def allow(self, folders: Iterable[str | os.PathLike[str]]) -> None:
        """Also allow writing inside ``folders`` (the output directory of a new request)."""
        self.allowed.extend(os.path.realpath(folder) for folder in folders)

    def judge(self, event: str, args: tuple[Any, ...]) -> None:
        """Called by the audit hook: record what a connector thread did; block it outside the allowed folders."""
        if not threads.is_connector():
            return
        for touch in _touches(event, args):
            if _ignored(touch.path):
                continue
            self.touched.append(touch)
            if not any(_inside(touch.path, folder) for folder in self.allowed):
                self.outside.append(touch)
                raise WriteBlocked(f"conformance: {self.label} {touch.what} {touch.path}, outside the request's "
                                   "output directory; a connector writes nowhere else")

    def written(self) -> list[str]:
        """Every path written or created, in order, once each (for the scans of file names)."""
        return list(dict.fromkeys(t.path for t in self.touched if t.what not in ("removed",)))

    def problems(self) -> list[str]:
        """What the connector did outside the allowed folders, once each, for a failure message."""
        return list(dict.fromkeys(f"{t.what} {t.path}" for t in self.outside))

    @contextlib.contextmanager
    def active(self) -> Iterator[FileWatch]:
        """Watch every connector thread while the block runs."""
        global _active
        install()
        previous, _active = _active, self
        try:
            yield self
        finally:
            _active = previous


def _audit(event: str, args: tuple[Any, ...]) -> None:
    watch = _active
    if watch is not None:
        watch.judge(event, args)


audit.route(("open", *_PAIR_EVENTS, *_PATH_EVENTS), _audit)

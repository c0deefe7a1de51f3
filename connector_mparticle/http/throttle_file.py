"""The sqlite throttle backend's files, and a lock whose every wait ends with the call that waits.

``throttle.sqlite_path`` names a folder the budget owns. It is opened through the framework's file module
(:meth:`dsr_framework.files.Folder.private`): created ``0700`` whatever the umask, refused when another user
could change it or a folder above it, and refused when it holds anything but the budget's own ``0600`` files
(the database, SQLite's ``-wal`` and ``-shm``, the lock). pyrate-limiter's own ``use_file_lock`` is not used:
it creates ``DB.lock`` beside the database with ``0644`` and waits for it without end, so another local user
who can open it can stall every call (a ``flock`` needs only a read descriptor). Instead :class:`BoundedLock`
takes a ``flock`` on a ``0600`` lock file inside the private folder (:class:`~dsr_framework.files.FolderLock`),
and each wait, including those pyrate-limiter makes inside the bucket, ends at the deadline of the hook call
waiting (:meth:`BoundedLock.until`), with :class:`ThrottleFileBusy`: "throttle file busy", never a hang past
``timeouts.total_seconds``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pyrate_limiter import Rate, SQLiteBucket
from pyrate_limiter.buckets.sqlite_bucket import Queries

from connector_mparticle.errors import RetryLaterError
from connector_mparticle.files import Folder, folder_path
from connector_mparticle.http.deadline import current

__all__ = ["BoundedLock", "ThrottleFileBusy", "sqlite_bucket"]

DATABASE = "budget.sqlite"
LOCK = "budget"  #: the lock file is ``.budget.lock``
#: The budget folder's own files: the database, what SQLite keeps beside it, the lock.
OWN_FILES = frozenset({DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal", f".{LOCK}.lock"})
#: How long a wait with no call's deadline (opening the budget, pyrate-limiter's background leak) may last.
UNBOUND_WAIT_SECONDS = 10.0


class ThrottleFileBusy(RetryLaterError):
    """Another process held the throttle file's lock until this call's deadline; nothing was sent."""


class BoundedLock:
    """A reentrant lock across this process's threads and, through a ``flock``, across processes; every wait
    ends at the deadline :meth:`until` set for the waiting thread, else the hook call's
    (:func:`~connector_mparticle.http.deadline.current`), else after :data:`UNBOUND_WAIT_SECONDS`,
    with :class:`ThrottleFileBusy`. It has the ``acquire``/``release`` and context-manager shape
    pyrate-limiter expects of a bucket's lock."""

    def __init__(self, folder: Folder, name: str) -> None:
        self.folder = folder
        self._file = folder.lock(name)
        self._threads = threading.RLock()
        self._depth = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def until(self, deadline: float) -> Iterator[None]:
        """Bound this thread's waits for the lock by ``deadline`` (a ``time.monotonic()``) within the block."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def _end(self, blocking: bool, timeout: float) -> float:
        """When (monotonic) this wait must give up."""
        now = time.monotonic()
        deadline = getattr(self._local, "deadline", None)
        call = current()
        if deadline is None and call is not None:
            deadline = call.end
        end = now + UNBOUND_WAIT_SECONDS if deadline is None else deadline
        if not blocking:
            return now
        return min(end, now + timeout) if timeout >= 0 else end

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock (again, in the thread holding it); :class:`ThrottleFileBusy` when the wait's end comes
        first. Never returns False: the caller must not read a busy file as a full budget."""
        end = self._end(blocking, timeout)
        if not self._threads.acquire(timeout=max(0.0, end - time.monotonic())):
            raise self._busy()
        if self._depth == 0 and not self._file.acquire(max(0.0, end - time.monotonic())):
            self._threads.release()
            raise self._busy()
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._file.release()
        self._threads.release()

    def _busy(self) -> ThrottleFileBusy:
        return ThrottleFileBusy(f"throttle file busy: another process held the lock of {self.folder.path} until "
                                "this call's deadline; nothing was sent, try again shortly", api="throttle")

    def close(self) -> None:
        self.folder.close()

    def __enter__(self) -> BoundedLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def sqlite_bucket(rates: list[Rate], table: str, sqlite_path: str) -> Any:
    """A pyrate-limiter SQLite bucket named ``table`` in the budget folder ``sqlite_path`` (see the module
    docstring), its lock a :class:`BoundedLock`."""
    where = folder_path(sqlite_path)
    with Folder.open(where.parent) as parent:
        home = parent.private(where.name, OWN_FILES.__contains__)
    lock = BoundedLock(home, LOCK)
    try:
        with lock:
            database = home.ensure(DATABASE)  # 0600: SQLite gives its -wal and -shm the same mode
            connection = sqlite3.connect(str(database), isolation_level="DEFERRED", check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(Queries.CREATE_BUCKET_TABLE.format(table=table))
            connection.execute(Queries.CREATE_INDEX_ON_TIMESTAMP.format(
                index_name=f"idx_{table}_rate_item_timestamp", table_name=table))
            connection.commit()
    except BaseException:
        lock.close()
        raise
    return SQLiteBucket(rates, connection, table=table, lock=lock)

"""A backlog's folder: the store, the reports and the result files, private to their owner and used by one
runner at a time.

.. code-block:: python

    from dsr_framework.batch import Backlog, read_requests

    with Backlog.open(Path("requests.batch")) as backlog:
        backlog.add(read_requests(Path("requests.csv"), backlog.defaults()))
        plan = backlog.plan(handle.manifest)
        print("\\n".join(plan.lines(human_duration)))
        outcome = backlog.run(handle.handle, plan_for=lambda open: backlog.plan(handle.manifest))
        backlog.write_reports()

The folder is opened through :mod:`dsr_framework.files` (created 0700, refused when another user could change
it or a folder above it; every file in it 0600, never through a link). The store lives in a private folder of
its own, ``store/`` (:meth:`~dsr_framework.files.Folder.private`), because SQLite opens its ``-wal`` and ``-shm``
by path. An exclusive lock on ``.backlog.lock`` (released by the kernel when the holder exits, even on SIGKILL)
keeps a second runner out: two runners would each pace themselves to the whole limit.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from dsr_framework.batch.inputs import Defaults
from dsr_framework.batch.local import LocalExecutor
from dsr_framework.batch.plan import Open, Plan, plan_backlog
from dsr_framework.batch.progress import CallRate, Display, Meter
from dsr_framework.batch.report import write_reports
from dsr_framework.batch.runner import Executor, Outcome, Runner, StopFlag
from dsr_framework.batch.step import Handler
from dsr_framework.batch.store import STORE_FOLDER, Imported, Store
from dsr_framework.files import FileError, Folder, FolderLock
from dsr_framework.manifest import Manifest
from dsr_framework.models import DsrRequest, format_time

__all__ = ["Backlog", "BacklogBusy", "ModeMismatch"]

FILES_FOLDER = "files"
LOCK_NAME = "backlog"  #: the lock file is ``.backlog.lock``
EARLIER_STORE = "store.sqlite"  #: where stores were kept before ``store/``


class BacklogBusy(RuntimeError):
    """Another runner holds the backlog's folder; nothing was done."""


class ModeMismatch(ValueError):
    """The backlog was started on the fleet and asked to run here, or the other way round."""


def _holder(lock: FolderLock) -> str:
    try:
        info = json.loads(lock.holder() or "")
        return f"process {int(info['pid'])} (since {str(info['since'])[:40]})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def _taken(folder: Folder) -> FolderLock:
    """The backlog's lock, taken; :class:`BacklogBusy` when another runner holds it."""
    lock = folder.lock(LOCK_NAME)
    if not lock.acquire(0):
        raise BacklogBusy(f"{folder.path} is in use by {_holder(lock)}; nothing was done")
    lock.note(json.dumps({"pid": os.getpid(), "since": format_time(datetime.now(UTC))}))
    return lock


def _earlier_layout(folder: Folder) -> None:
    """Refuse a folder holding a store of an earlier version beside ``store/`` (it would be ignored)."""
    if os.path.lexists(folder.path_of(EARLIER_STORE)):
        raise FileError(f"{folder.path} holds {EARLIER_STORE} of an earlier version, kept beside the folder; move "
                        f"{EARLIER_STORE} (and its -wal and -shm, if any) into a new 0700 folder "
                        f"{folder.path_of(STORE_FOLDER)} to carry it on")


class Backlog:
    """An open backlog folder (see the module docstring); use :meth:`open`."""

    def __init__(self, folder: Folder, store: Store) -> None:
        self._folder = folder
        self.folder = folder.path
        self.store = store

    @classmethod
    @contextlib.contextmanager
    def open(cls, folder: Path) -> Iterator[Backlog]:
        """Create or open ``folder`` and hold its lock while the block runs; :class:`BacklogBusy` if held,
        :class:`~dsr_framework.files.FileError` when the folder cannot be trusted (see the module docstring)."""
        with Folder.open(folder) as opened, _taken(opened):
            _earlier_layout(opened)
            store = Store.open(opened)
            try:
                yield cls(opened, store)
            finally:
                store.close()

    @staticmethod
    def exists(folder: Path) -> bool:
        """True when ``folder`` holds a backlog (its store), without opening or creating anything."""
        return os.path.lexists(folder / STORE_FOLDER) or os.path.lexists(folder / EARLIER_STORE)

    @property
    def files_folder(self) -> Path:
        """Where requests without an ``output_dir`` of their own get their result files (results, receipts)."""
        return self.folder / FILES_FOLDER

    def defaults(self, regulation: str = "gdpr") -> Defaults:
        """What requests read into this backlog get when they leave a field out."""
        return self.defaults_for(self.folder, regulation)

    @staticmethod
    def defaults_for(folder: Path, regulation: str = "gdpr") -> Defaults:
        """What requests read into the backlog at ``folder`` get when they leave a field out (result files go
        to its ``files/``)."""
        return Defaults(regulation=regulation, output_dir=str(folder.absolute() / FILES_FOLDER))

    def add(self, requests: Sequence[DsrRequest]) -> Imported:
        """Store the requests not held yet (:class:`StoreConflict` if an id is held with different content)."""
        return self.store.add(requests)

    def claim_mode(self, mode: str) -> None:
        """Record whether the backlog runs ``local`` (threads here) or on the ``fleet``; :class:`ModeMismatch`
        when leaving the fleet while steps are out there (they may still be running on a worker)."""
        if self.store.meta("mode") == "fleet" and mode != "fleet" and self.store.claims():
            raise ModeMismatch("this backlog has steps out on the fleet (they may still be running there); carry "
                               "it on with the fleet until they are back")
        self.store.set_meta("mode", mode)

    def plan(self, manifest: Manifest, target_share: float | None = None,
             overrides: Mapping[str, float] | None = None) -> Plan:
        """The plan for the requests not final yet."""
        return plan_backlog(self.store.open_by_type(), manifest, target_share, overrides)

    def run(self, handler: Handler | None, planner: Callable[[Open], Plan], *, workers: int = 8,
            executor: Executor | None = None, display: Display | None = None, stop: StopFlag | None = None,
            wait: bool = True, meter: Meter | None = None, rate: CallRate | None = None) -> Outcome:
        """Drive the open requests until final (or idle without ``wait``, or stopped): on ``workers`` threads
        here with ``handler``, or through ``executor`` (the fleet)."""
        if executor is None:
            if handler is None:
                raise ValueError("give a handler (threads here) or an executor (the fleet)")
            self.claim_mode("local")
            executor = LocalExecutor(handler, workers)
        try:
            runner = Runner(self.store, executor, planner, display=display, stop=stop, wait=wait, meter=meter,
                            rate=rate)
            return runner.run()
        finally:
            executor.close()

    def write_reports(self) -> tuple[Path, Path]:
        """``report.csv`` and ``report.json`` in the folder; their paths."""
        return write_reports(self.store, self._folder)

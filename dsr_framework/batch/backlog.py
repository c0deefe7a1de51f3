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

The folder is 0700 and every file in it 0600 (:mod:`dsr_framework.batch.files`). An exclusive lock on
``.lock`` (released by the kernel when the holder exits, even on SIGKILL) keeps a second runner out: two
runners would each pace themselves to the whole limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from dsr_framework.batch.files import open_private, private_folder
from dsr_framework.batch.inputs import Defaults
from dsr_framework.batch.local import LocalExecutor
from dsr_framework.batch.plan import Open, Plan, plan_backlog
from dsr_framework.batch.progress import CallRate, Display, Meter
from dsr_framework.batch.report import write_reports
from dsr_framework.batch.runner import Executor, Outcome, Runner, StopFlag
from dsr_framework.batch.step import Handler
from dsr_framework.batch.store import Imported, Store
from dsr_framework.manifest import Manifest
from dsr_framework.models import DsrRequest, format_time

__all__ = ["Backlog", "BacklogBusy", "ModeMismatch"]

STORE_FILE = "store.sqlite"
FILES_FOLDER = "files"
LOCK_FILE = ".lock"


class BacklogBusy(RuntimeError):
    """Another runner holds the backlog's folder; nothing was done."""


class ModeMismatch(ValueError):
    """The backlog was started on the fleet and asked to run here, or the other way round."""


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        return f"process {info['pid']} (since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class Backlog:
    """An open backlog folder (see the module docstring); use :meth:`open`."""

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self.store = store

    @classmethod
    @contextlib.contextmanager
    def open(cls, folder: Path) -> Iterator[Backlog]:
        """Create or open ``folder`` and hold its lock while the block runs; :class:`BacklogBusy` if held."""
        private_folder(folder)
        lock = folder / LOCK_FILE
        fd = open_private(lock)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BacklogBusy(f"{folder} is in use by {_holder(lock)}; nothing was done") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": format_time(datetime.now(UTC))}).encode(), 0)
            store = Store.open(folder / STORE_FILE)
            try:
                yield cls(folder, store)
            finally:
                store.close()
        finally:
            os.close(fd)

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
        return write_reports(self.store, self.folder)

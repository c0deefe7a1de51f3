"""The sqlite throttle's files on a shared machine: private whatever the umask, nothing foreign used, and a lock
another process holds ends the call by its deadline with "throttle file busy" (it used to hang past
``timeouts.total_seconds`` on pyrate-limiter's unbounded file lock, created 0644 beside a 0644 database)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_mparticle import plugin
from connector_mparticle.errors import ConfigurationError
from connector_mparticle.files import Folder
from connector_mparticle.http.throttle import Throttle
from connector_mparticle.http.throttle_file import BoundedLock, ThrottleFileBusy
from connector_mparticle.sandbox import Sandbox
from tests.support.filesystem import IS_ROOT, OTHER_UID, umask
from tests.support.hosting import request

LIMITS = {"identity": (20.0, 1.0)}


def build(path: Path) -> Throttle:
    return Throttle.build(LIMITS, 0.75, backend="sqlite", sqlite_path=str(path))


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_every_throttle_file_is_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    where = tmp_path / "shared" / "budget"
    with umask(mask):
        throttle = build(where)
        try:
            for _ in range(3):
                throttle.acquire("identity", time.monotonic() + 5)
            names = sorted(p.name for p in where.iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in where.iterdir()}
        finally:
            throttle.close()
    assert {"budget.sqlite", "budget.sqlite-wal", "budget.sqlite-shm"} <= set(names), names
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["budget.sqlite-wal", "notes.txt", ".budget.lock"])
def test_a_budget_folder_holding_anything_foreign_is_refused(tmp_path: Path, planted: str) -> None:
    where = tmp_path / "budget"
    where.mkdir(mode=0o700)
    (where / planted).write_bytes(b"")
    (where / planted).chmod(0o644)  # another user may have opened it while it was readable
    if IS_ROOT and planted != "notes.txt":
        (where / planted).chmod(0o600)
        os.chown(where / planted, OTHER_UID, OTHER_UID)
    with pytest.raises(ConfigurationError, match=r"another user|did not create|read or written by others"):
        build(where)


def test_a_budget_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    where = tmp_path / "budget"
    where.mkdir()
    where.chmod(0o777)
    with pytest.raises(ConfigurationError, match="every user"):
        build(where)
    assert list(where.iterdir()) == []


HOLDER = """
import sys, time
from connector_mparticle.files import Folder
with Folder.open(sys.argv[1], create=False) as folder, folder.lock("budget") as lock:
    assert lock.acquire(5)
    print("held", flush=True)
    time.sleep(60)
"""


def hold_lock(where: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(where)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_held_throttle_lock_ends_the_wait_at_the_deadline_with_a_clear_error(tmp_path: Path) -> None:
    where = tmp_path / "budget"
    throttle = build(where)
    holder = hold_lock(where)
    try:
        started = time.monotonic()
        with pytest.raises(ThrottleFileBusy, match="throttle file busy"):
            throttle.acquire("identity", started + 1.0)
        assert time.monotonic() - started < 2.5
    finally:
        holder.kill()
        holder.wait()
        throttle.close()


def test_a_held_throttle_lock_fails_the_hook_call_within_total_seconds(sandbox: Sandbox, tmp_path: Path) -> None:
    where = tmp_path / "budget"
    config = sandbox.connector_config(throttle={"backend": "sqlite", "sqlite_path": str(where)},
                                      timeouts={"total_seconds": 2})
    assert plugin.handle_opt_out(config=config, request=request("opt_out"), state=None).status == "completed"
    holder = hold_lock(where)
    try:
        started = time.monotonic()
        result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"
    assert "throttle file busy" in result.message
    assert elapsed < 4.0, f"the call took {elapsed:.1f}s with total_seconds 2"


def _busy_within(lock: BoundedLock, budget: float) -> float:
    """How long ``lock.acquire`` took to give up under a deadline ``budget`` seconds away."""
    started = time.monotonic()
    with lock.until(started + budget), pytest.raises(ThrottleFileBusy, match="throttle file busy"):
        lock.acquire()
    return time.monotonic() - started


@settings(max_examples=12, deadline=None)
@given(budget=st.floats(0.0, 0.4), reentries=st.integers(1, 4))
def test_no_wait_for_a_held_throttle_lock_outlasts_the_calls_deadline(budget: float, reentries: int) -> None:
    """Whatever the deadline, a lock held elsewhere (another process's ``flock``, or this process's other thread
    deep in pyrate-limiter's re-entered calls) ends the wait at the deadline, with "throttle file busy"."""
    with tempfile.TemporaryDirectory() as scratch:
        lock = BoundedLock(Folder.open(Path(scratch) / "budget"), "budget")
        with Folder.open(Path(scratch) / "budget") as other, other.lock("budget") as held:
            assert held.acquire(0)  # a second descriptor: flock treats it as another process
            assert _busy_within(lock, budget) < budget + 0.5
        taken, done = threading.Event(), threading.Event()

        def hold() -> None:  # re-entered as pyrate-limiter does, and held until the waiter has given up
            for _ in range(reentries):
                lock.acquire()
            taken.set()
            done.wait(10)
            for _ in range(reentries):
                lock.release()

        holder = threading.Thread(target=hold)
        holder.start()
        assert taken.wait(10)
        try:
            assert _busy_within(lock, budget) < budget + 0.5
        finally:
            done.set()
            holder.join()
        with lock.until(time.monotonic() + 5):  # released by its holder: taken again at once
            assert lock.acquire()
        lock.release()
        lock.close()

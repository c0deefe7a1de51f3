"""The backlog's store and folder: due dates first, one claim per request, private files, one runner at a time."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsr_framework import DsrRequest, Result
from dsr_framework.batch import Backlog, BacklogBusy, StoreConflict, UnsafePathError
from dsr_framework.batch.store import Store
from dsr_framework.files import Folder

NOW = datetime.now(UTC)


def request(request_id: str, due_in_days: float | None = None, kind: str = "deletion") -> DsrRequest:
    due = NOW + timedelta(days=due_in_days) if due_in_days is not None else None
    return DsrRequest(request_id, kind, "gdpr", {"email": f"{request_id.lower()}@example.com"},  # type: ignore[arg-type]
                      NOW, due_at=due)


def pending(r: DsrRequest, after: float = 60.0) -> Result:
    return Result(r.request_id, r.type, "pending", "waiting", state={"n": 1},
                  next_check_at=datetime.now(UTC) + timedelta(seconds=after))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Folder.open(tmp_path / "b") as folder:
        opened = Store.open(folder)
        yield opened
        opened.close()


def test_requests_are_claimed_nearest_due_date_first_then_in_file_order(store: Store) -> None:
    store.add([request("A"), request("B", 30), request("C", -2), request("D"), request("E", 1)])
    claimed = [c.request.request_id for c in store.claim(5, time.time())]
    assert claimed == ["C", "E", "B", "A", "D"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-10, 40)), min_size=1, max_size=25), st.integers(1, 6))
def test_claims_follow_due_dates_then_file_order_and_never_repeat(dues: list[int | None], batch: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        with Folder.open(scratch) as folder:
            store = Store.open(folder)
        store.add([request(f"R{i}", due) for i, due in enumerate(dues)])
        claimed: list[str] = []
        while claims := store.claim(batch, time.time()):
            claimed += [c.request.request_id for c in claims]
        store.close()
    expected = sorted(range(len(dues)), key=lambda i: (dues[i] is None, dues[i] or 0, i))
    assert claimed == [f"R{i}" for i in expected]


def test_a_claimed_request_is_not_claimed_again_and_only_its_token_records_or_releases(store: Store) -> None:
    r = request("A")
    store.add([r])
    (claim,) = store.claim(3, time.time())
    assert store.claim(3, time.time()) == []
    assert not store.record("A", "not-the-token", pending(r), "pending", time.time(), False, time.time())
    assert not store.release("A", "not-the-token")
    assert store.record("A", claim.token, pending(r), "pending", time.time() - 1, False, time.time())
    assert store.release("A", claim.token)
    (again,) = store.claim(3, time.time())
    assert again.state == {"n": 1} and again.token != claim.token and not again.new


def test_a_pending_request_waits_for_its_next_check(store: Store) -> None:
    r = request("A")
    store.add([r])
    (claim,) = store.claim(1, time.time())
    store.record("A", claim.token, pending(r, after=30), "pending", time.time() + 30, False, time.time())
    store.release("A", claim.token)
    assert store.claim(1, time.time()) == []
    assert store.claim(1, time.time() + 31) != []


def test_the_same_id_with_other_content_is_refused_and_nothing_is_imported(store: Store) -> None:
    store.add([request("A")])
    changed = DsrRequest("A", "deletion", "gdpr", {"email": "someone-else@example.com"}, NOW)
    with pytest.raises(StoreConflict, match="A"):
        store.add([request("B"), changed])
    assert store.counts().total == 1
    assert store.add([request("A"), request("B")]).added == 1


def test_a_cap_admits_new_requests_but_never_holds_back_a_due_check(store: Store) -> None:
    store.add([request(f"R{i}") for i in range(5)])
    (first,) = store.claim(1, time.time())
    store.record(first.request.request_id, first.token, pending(first.request), "pending", time.time() - 1, False,
                 time.time())
    store.release(first.request.request_id, first.token)
    claimed = store.claim(5, time.time(), admit=lambda kind, identifiers: False)
    assert [c.request.request_id for c in claimed] == ["R0"]


def test_the_folder_and_every_file_in_it_are_private_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "backlog"
    previous = os.umask(0)
    try:
        with Backlog.open(folder) as backlog:
            backlog.add([request("A")])
            (wal, shm) = (folder / "store" / "store.sqlite-wal", folder / "store" / "store.sqlite-shm")
            lock = folder / ".backlog.lock"
            modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (folder / "store" / "store.sqlite", wal, shm, lock)}
            csv_path, json_path = backlog.write_reports()
    finally:
        os.umask(previous)
    for created in (tmp_path / "deep", folder, folder / "store"):
        assert stat.S_IMODE(created.stat().st_mode) == 0o700, created
    modes.update({p: stat.S_IMODE(p.stat().st_mode) for p in (csv_path, json_path)})
    assert set(modes.values()) == {0o600}, modes


def test_a_symbolic_link_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "linked").symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"), Backlog.open(tmp_path / "linked"):
        pass
    own = tmp_path / "own"
    (own / "store").mkdir(parents=True, mode=0o700)
    (own / "store" / "store.sqlite").symlink_to(tmp_path / "victim")
    with pytest.raises(UnsafePathError, match="symbolic link"), Backlog.open(own):
        pass
    assert not (tmp_path / "victim").exists()
    (own / "store" / "store.sqlite").unlink()
    (own / "report.csv").symlink_to(tmp_path / "victim2")
    with Backlog.open(own) as backlog:
        backlog.write_reports()
    assert (own / "report.csv").is_file() and not (own / "report.csv").is_symlink()
    assert not (tmp_path / "victim2").exists()


def test_a_second_runner_is_refused_while_the_first_holds_the_backlog(tmp_path: Path) -> None:
    folder = tmp_path / "backlog"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from dsr_framework.batch import Backlog\n"
                               "with Backlog.open(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(30)",
                               str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BacklogBusy, match=f"process {holder.pid}"), Backlog.open(folder):
            pass
    finally:
        holder.kill()
        holder.wait()
    with Backlog.open(folder):  # the kernel released the lock when the holder died
        pass
    assert not os.path.exists(folder / ".backlog.lock")  # removed on release

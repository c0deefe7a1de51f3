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
from dsr_framework.batch import Backlog, BacklogBusy, StoreConflict, UnsafePath
from dsr_framework.batch.files import private_folder, write_private
from dsr_framework.batch.store import Store

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
    opened = Store.open(private_folder(tmp_path / "b") / "store.sqlite")
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
        store = Store.open(Path(scratch) / "store.sqlite")
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


def test_the_folder_and_every_file_in_it_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "backlog"
    folder.mkdir(mode=0o755)
    with Backlog.open(folder) as backlog:
        backlog.add([request("A")])
        csv_path, json_path = backlog.write_reports()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (folder / "store.sqlite", folder / ".lock", csv_path, json_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_symbolic_link_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "linked").symlink_to(target)
    with pytest.raises(UnsafePath, match="symbolic link"):
        private_folder(tmp_path / "linked")
    folder = private_folder(tmp_path / "own")
    (folder / "store.sqlite").symlink_to(tmp_path / "victim")
    with pytest.raises(OSError, match=r"symbolic link|Too many levels"):
        Store.open(folder / "store.sqlite")
    assert not (tmp_path / "victim").exists()
    (folder / "report.csv").symlink_to(tmp_path / "victim2")
    write_private(folder / "report.csv", b"x")
    assert (folder / "report.csv").read_bytes() == b"x" and not (tmp_path / "victim2").exists()


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
    assert os.path.exists(folder / ".lock")

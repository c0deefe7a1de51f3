"""A backlog's folder on a shared machine: the batch store writes through the framework's one file module.

Each case is an attack that worked on the batch store's earlier, separate file layer (a folder tightened
instead of refused, parents created under the umask, SQLite's ``-wal`` planted or kept open by another user
before the folder was tightened, a folder above swappable mid-run, root writing into another user's folder).
Another user is played by root's ``chown``; where the suite does not run as root those cases are skipped.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsr_framework import DsrRequest
from dsr_framework.batch import Backlog, FileError, UnsafePathError
from tests.support.filesystem import IS_ROOT, OTHER_UID, snapshot, umask

needs_root = pytest.mark.skipif(not IS_ROOT, reason="plays another local user with chown: needs root")


def request(request_id: str) -> DsrRequest:
    return DsrRequest(request_id, "deletion", "gdpr", {"email": "a@example.com"}, datetime.now(UTC))


def test_a_backlog_folder_others_can_write_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(UnsafePathError, match="can be written by every user"), Backlog.open(folder):
        pass
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777  # refused, not tightened behind the owner's back
    assert list(folder.iterdir()) == []


def test_a_backlog_under_a_folder_others_can_change_is_refused(tmp_path: Path) -> None:
    """The earlier layer checked no folder above: another user renamed the backlog away mid-run and put a
    link in its place, and the reports went where the link pointed."""
    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(0o777)  # not sticky: anyone may rename what is in it
    with pytest.raises(UnsafePathError, match="which other users can change"), Backlog.open(parent / "b.batch"):
        pass
    assert not (parent / "b.batch").exists()


@needs_root
def test_root_never_writes_a_backlog_into_another_users_folder(tmp_path: Path) -> None:
    """Root running ``batch`` on a file in a user's folder: that user could swap ``FILE.batch`` for a link to
    ``/etc``; the folder is refused instead."""
    home = tmp_path / "alice"
    home.mkdir()
    os.chown(home, OTHER_UID, OTHER_UID)
    before = snapshot(home)
    with pytest.raises(UnsafePathError, match="another user"), Backlog.open(home / "requests.batch"):
        pass
    assert snapshot(home) == before


def test_every_folder_created_for_a_backlog_is_private_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0), Backlog.open(tmp_path / "a" / "b" / "c.batch") as backlog:
        backlog.add([request("R1")])
        backlog.write_reports()
    for made in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c.batch",
                 tmp_path / "a" / "b" / "c.batch" / "store"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    files = [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files


STORE_ENTRIES = ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm", "store.sqlite-journal", "notes.txt",
                 ".hidden", "store.sqlite-wal2")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=st.sampled_from(STORE_ENTRIES),
       mode=st.sampled_from([0o600, 0o644, 0o640, 0o660, 0o604, 0o666]),
       foreign=st.booleans() if IS_ROOT else st.just(False),
       link=st.booleans())
def test_the_store_folder_opens_only_when_nothing_in_it_could_be_anyone_elses(
        tmp_path_factory: pytest.TempPathFactory, entry: str, mode: int, foreign: bool, link: bool) -> None:
    """What another user could have planted in ``store/``, or opened while it was open to them, is refused: a
    ``-wal`` kept open there reads every subject's email as SQLite appends to it."""
    folder = tmp_path_factory.mktemp("backlog")
    home = folder / "store"
    home.mkdir(mode=0o700)
    planted = home / entry
    planted.write_bytes(b"")
    planted.chmod(mode)
    if link:
        os.link(planted, folder / "kept-elsewhere")
    if foreign:
        os.chown(planted, OTHER_UID, OTHER_UID)
    expected_name = entry in STORE_ENTRIES[:4]
    safe = expected_name and mode == 0o600 and not foreign and not link
    if safe:
        with Backlog.open(folder) as backlog:
            backlog.add([request("R1")])
        return
    with pytest.raises(UnsafePathError), Backlog.open(folder):
        pass


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711, 0o770])
def test_a_store_folder_open_to_others_is_refused_not_tightened(tmp_path: Path, mode: int) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store").chmod(mode)
    with pytest.raises(UnsafePathError, match="open to others"), Backlog.open(tmp_path):
        pass
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == mode


def test_a_store_of_the_earlier_layout_is_not_silently_ignored(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite").write_bytes(b"")
    with pytest.raises(FileError, match="earlier version"), Backlog.open(tmp_path):
        pass


def test_reports_replace_a_planted_link_and_never_follow_it(tmp_path: Path) -> None:
    bait = tmp_path / "bait.txt"
    bait.write_text("keep")
    folder = tmp_path / "b"
    folder.mkdir(mode=0o700)
    (folder / "report.csv").symlink_to(bait)
    with Backlog.open(folder) as backlog:
        backlog.add([request("R1")])
        csv_path, _ = backlog.write_reports()
    assert bait.read_text() == "keep"
    assert not csv_path.is_symlink() and stat.S_IMODE(csv_path.stat().st_mode) == 0o600


def test_nothing_is_created_under_a_folder_others_can_change(tmp_path: Path) -> None:
    """Refused before the first ``mkdir``: another user watching the folder never sees (nor races) a new one."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafePathError, match="which other users can change"):
        Backlog.open(shared / "a" / "b" / "c.batch").__enter__()
    assert list(shared.iterdir()) == []

"""The output-folder module's promises, stated over generated request ids and generated folder states on real
temporary directories (connector_mparticle/files.py).

Another local user is played by root's ``chown`` and by a child that drops to ``nobody``; where the suite does
not run as root those cases are skipped with the reason, never faked.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connector_mparticle.errors import ConfigurationError, MParticleError
from connector_mparticle.files import FileRecord, Folder, UnsafePathError, folder_path, stem
from tests.support.filesystem import (
    FOLDER_KINDS,
    IS_ROOT,
    NEEDS_ROOT,
    OTHER_UID,
    PLANTED_KINDS,
    as_other_user,
    make_folder,
    make_outside,
    plant,
    snapshot,
    umask,
    usable,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FOLDER_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = (".zip", "-mpid.zip", "-summary.json", "-summary.txt", "-receipt.json")
SUBJECT = "0123456789abcdef0123456789abcdef"  #: a subject digest (flows.subject.subject_digest)
NAME = "mparticle-access-t-0123456789abcdef0123456789abcdef.zip"
DATA = b"the subject's export"


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="files-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fresh_base() -> Path:
    """A new private folder per hypothesis example (function fixtures are not reset between examples)."""
    return Path(tempfile.mkdtemp(prefix="files-"))


# --- names: the whole request id, no collisions -------------------------------------------------------------

ids = st.text(max_size=300)
long_ids = st.text(min_size=121, max_size=4000)


@st.composite
def one_character_apart(draw: st.DrawFn) -> tuple[str, str]:
    """Two ids that differ in exactly one character (``T:1`` / ``T_1`` is one such pair)."""
    text = draw(st.text(min_size=1, max_size=250))
    where = draw(st.integers(0, len(text) - 1))
    other = draw(st.characters().filter(lambda c: c != text[where]))
    return text, text[:where] + other + text[where + 1:]


@PROPERTY
@given(st.one_of(st.tuples(ids, ids), one_character_apart(),
                 st.tuples(long_ids, st.text(max_size=20)).map(lambda p: (p[0], p[0] + p[1] + "x"))))
def test_two_different_request_ids_never_share_a_file_name(pair: tuple[str, str]) -> None:
    first, second = pair
    assume(first != second)
    names = {stem("mparticle-access", request, SUBJECT) + suffix for request in pair for suffix in SUFFIXES}
    assert len(names) == 2 * len(SUFFIXES)
    assert len({name.casefold() for name in names}) == len(names), "a case-insensitive file system merges them"


@PROPERTY
@given(ids, st.sampled_from(SUFFIXES))
def test_every_name_is_one_plain_visible_entry_whatever_the_id(request_id: str, suffix: str) -> None:
    name = stem("mparticle-erasure", request_id, SUBJECT) + suffix
    assert name.isascii() and "/" not in name and "\0" not in name and len(name.encode()) <= 255
    assert name.startswith("mparticle-erasure-") and not name.startswith(".")


def test_the_ids_that_used_to_collide_now_have_their_own_names() -> None:
    assert stem("mparticle-access", "T:1", SUBJECT) != stem("mparticle-access", "T_1", SUBJECT)
    long = "A" * 120
    assert stem("mparticle-access", long + "1", SUBJECT) != stem("mparticle-access", long + "2", SUBJECT)
    assert stem("mparticle-access", "TICKET-1042", SUBJECT).startswith("mparticle-access-TICKET-1042-")


# --- folders: the user's alone, never through a link --------------------------------------------------------

folder_kinds = st.sampled_from(FOLDER_KINDS).filter(
    lambda k: IS_ROOT or k not in NEEDS_ROOT)  # chown needs root
planted = st.dictionaries(st.sampled_from(["final", "lock", "temp", "other"]),
                          st.sampled_from(PLANTED_KINDS).filter(lambda k: IS_ROOT or k != "other_owner_file"),
                          max_size=4)
masks = st.sampled_from([0o000, 0o002, 0o022, 0o077, 0o777])


def plant_in(out: Path, where: dict[str, str], outside: Path) -> None:
    names = {"final": NAME, "lock": f".{NAME}.lock", "temp": f".{NAME}.0123456789abcdef.tmp", "other": "notes.txt"}
    for place, kind in where.items():
        plant(out / names[place], kind, outside)


def write_once(out: Path) -> FileRecord:
    """What every writer of the connector does: open the folder, take the name's lock, sweep, write."""
    with Folder.open(out) as folder, folder.lock(NAME) as lock:
        assert lock.acquire(1.0)
        folder.sweep([NAME])
        return folder.write(NAME, DATA)


# kept whole: one generated state, then every promise checked against it, in the order a reader checks them
@FOLDER_PROPERTY
@given(folder_kinds, planted, masks)
def test_no_folder_state_leads_to_a_write_outside_a_followed_link_or_a_wide_mode(
        kind: str, where: dict[str, str], mask: int) -> None:
    base = fresh_base()
    try:
        outside = make_outside(base)
        out = make_folder(base, kind)
        if usable(kind) and kind != "absent":
            plant_in(out, where, outside)
        before_outside, before_out = snapshot(outside), snapshot(out)
        try:
            with umask(mask):
                record = write_once(out)
        except MParticleError as exc:
            refused: MParticleError | None = exc
        else:
            refused = None
        assert snapshot(outside) == before_outside, "something outside the folder changed (a link was followed?)"
        assert sorted(p.name for p in base.iterdir()) == ["out", "outside"], "a file was written beside the folder"
        if not usable(kind):
            assert isinstance(refused, UnsafePathError), (kind, refused)
            assert snapshot(out) == before_out
            return
        if refused is not None:  # only a folder where the name itself is a directory may stop the write
            assert where.get("final") == "directory" or where.get("lock") in ("directory", "symlink_to_file",
                                                                               "symlink_to_dir", "dangling_symlink",
                                                                               "fifo", "hardlink", "other_owner_file")
            assert isinstance(refused, ConfigurationError)
            return
        written = os.lstat(out / NAME)
        assert stat.S_ISREG(written.st_mode) and stat.S_IMODE(written.st_mode) == 0o600 and written.st_nlink == 1
        assert (out / NAME).read_bytes() == DATA and record == FileRecord(NAME, len(DATA), record.sha256)
        if kind == "absent":
            assert stat.S_IMODE(os.lstat(out).st_mode) == 0o700
        leftovers = [p.name for p in out.iterdir() if p.name.endswith((".tmp", ".lock"))
                     and not (where.get("temp") == "directory" and p.name.endswith(".tmp"))]
        assert leftovers == [], "temporary or lock files were left"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@PROPERTY
@given(st.sampled_from([k for k in PLANTED_KINDS if k != "directory"]).filter(
    lambda k: IS_ROOT or k != "other_owner_file"))
def test_a_file_found_in_the_folder_is_vouched_for_only_if_it_is_a_plain_file_of_ours(kind: str) -> None:
    base = fresh_base()
    try:
        outside = make_outside(base)
        (outside / "bait.txt").write_bytes(DATA)  # a link or hard link to a file holding exactly the bytes
        out = base / "out"
        out.mkdir(mode=0o700)
        plant(out / NAME, kind, outside)
        if kind in ("file", "world_writable_file", "other_owner_file"):
            (out / NAME).write_bytes(DATA)
        expected = FileRecord(NAME, len(DATA), __import__("hashlib").sha256(DATA).hexdigest())
        with Folder.open(out) as folder:
            assert folder.matches(expected) is (kind in ("file", "world_writable_file"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_symlinked_folder_is_refused_with_where_it_points(base: Path) -> None:
    outside = make_outside(base)
    (base / "out").symlink_to(outside / "dir", target_is_directory=True)
    with pytest.raises(UnsafePathError, match=r"is a symbolic link \(to .*dir\); links are not followed"):
        Folder.open(base / "out")
    assert sorted(p.name for p in (outside / "dir").iterdir()) == ["inner.txt"]


def test_a_folder_others_can_write_in_is_refused_saying_how_to_fix_it(base: Path) -> None:
    out = base / "shared"
    out.mkdir()
    out.chmod(0o777)
    with pytest.raises(UnsafePathError, match=r"can be written by every user.*chmod o-w"):
        Folder.open(out)
    assert list(out.iterdir()) == []


def test_folders_created_on_the_way_are_private_whatever_the_umask(base: Path) -> None:
    with umask(0o000), Folder.open(base / "a" / "b" / "c") as folder:
        folder.write("x.json", b"{}")
    for path in (base / "a", base / "a" / "b", base / "a" / "b" / "c"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((base / "a" / "b" / "c" / "x.json").stat().st_mode) == 0o600


def test_an_umask_that_forbids_everything_still_gives_readable_private_files(base: Path) -> None:
    with umask(0o777), Folder.open(base / "out") as folder:
        folder.write("x.json", b"{}")
        assert folder.read("x.json", 10) == b"{}"
    assert stat.S_IMODE((base / "out").stat().st_mode) == 0o700


def test_folder_path_never_follows_the_last_part(base: Path) -> None:
    (base / "link").symlink_to(base)
    assert folder_path(base / "link") == base / "link"
    assert folder_path(base / "x" / ".." / "link") == base / "link"


def test_reading_a_fifo_is_refused_at_once_instead_of_hanging(base: Path) -> None:
    out = base / "out"
    out.mkdir(mode=0o700)
    os.mkfifo(out / "state.json")
    started = time.monotonic()
    with Folder.open(out) as folder, pytest.raises(UnsafePathError, match="not a regular file"):
        folder.read("state.json", 1000)
    assert time.monotonic() - started < 2


def test_a_crash_before_the_rename_leaves_only_a_hidden_file_the_next_writer_sweeps(base: Path) -> None:
    with Folder.open(base / "out") as folder:
        staged = folder.stage(NAME)
        staged.write(DATA)  # then the process dies: neither commit nor discard runs
        assert not (base / "out" / NAME).exists()
        assert folder.sweep([NAME]) == 1
        assert list((base / "out").iterdir()) == []
        staged.discard()


def test_rename_stays_inside_a_folder_moved_while_it_is_open(base: Path) -> None:
    """A parent swapped after the folder was opened cannot redirect the write: it follows the folder."""
    with Folder.open(base / "out") as folder:
        os.rename(base / "out", base / "moved")
        make_outside(base)
        (base / "out").symlink_to(base / "outside", target_is_directory=True)
        folder.write(NAME, DATA)
    assert (base / "moved" / NAME).read_bytes() == DATA
    assert not (base / "outside" / NAME).exists()


# --- locks ---------------------------------------------------------------------------------------------------

def test_lock_files_do_not_pile_up_and_one_holder_at_a_time(base: Path) -> None:
    with Folder.open(base / "out") as folder:
        inside = [0]
        overlaps = [0]
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(50):
                    with folder.lock(NAME) as lock:
                        assert lock.acquire(10)
                        inside[0] += 1
                        overlaps[0] += inside[0] > 1
                        time.sleep(0.0005)
                        inside[0] -= 1
            except BaseException as exc:  # reported below, from the test's own thread
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == [] and overlaps == [0]
    assert list((base / "out").iterdir()) == []


def _take_the_lock_repeatedly(path: str, times: int, failures: Any) -> None:
    """A worker process: take and release one lock ``times`` times; count what went wrong."""
    failed = 0
    with Folder.open(path) as folder:
        for _ in range(times):
            try:
                with folder.lock(NAME) as lock:
                    failed += not lock.acquire(30)
            except MParticleError:
                failed += 1
    failures.put(failed)


def test_processes_racing_for_a_lock_never_see_a_released_lock_file_as_foreign(base: Path) -> None:
    """A waiter that opened the lock file just before its holder removed it on release finds a file with no
    link left: that is a lock to take again, not a file to refuse."""
    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    workers = [context.Process(target=_take_the_lock_repeatedly, args=(str(base), 400, failures)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [failures.get(timeout=5) for _ in workers] == [0, 0, 0, 0]
    assert list(base.iterdir()) == []


def test_a_second_process_waits_for_the_lock_and_can_say_who_holds_it(base: Path) -> None:
    with Folder.open(base / "out") as folder, folder.lock("state.json") as mine:
        assert mine.acquire(0)
        mine.note('{"pid": 1}')
        with Folder.open(base / "out") as other_folder, other_folder.lock("state.json") as theirs:
            assert theirs.acquire(0.2) is False
            assert theirs.holder() == '{"pid": 1}'


def test_a_planted_link_at_the_lock_path_is_refused_and_its_target_untouched(base: Path) -> None:
    outside = make_outside(base)
    out = base / "out"
    out.mkdir(mode=0o700)
    (out / ".state.json.lock").symlink_to(outside / "bait.txt")
    before = snapshot(outside)
    with Folder.open(out) as folder, folder.lock("state.json") as lock, pytest.raises(UnsafePathError,
                                                                                       match="symbolic link"):
        lock.acquire(0)
    assert snapshot(outside) == before


@pytest.mark.skipif(not IS_ROOT, reason="simulating another local user needs root (a child drops to nobody)")
def test_a_local_user_without_write_access_cannot_take_or_stall_the_lock(base: Path) -> None:
    base.chmod(0o755)
    out = base / "out"
    with Folder.open(out) as folder:
        out.chmod(0o755)  # even a folder others can read: only its files' modes protect the lock
        with folder.lock(NAME) as lock:
            assert lock.acquire(0)
            lock_file = out / f".{NAME}.lock"

            def open_lock_file() -> int:
                try:
                    os.open(lock_file, os.O_RDONLY)
                except PermissionError:
                    return 0
                return 1

            assert as_other_user(open_lock_file) == 0, "another user could open the lock file"

        def hold_the_folder() -> int:  # the old lock was a flock on the folder itself: anyone could hold it
            fd = os.open(out, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(ready_w, b"x")
            time.sleep(1.5)
            return 0

        ready_r, ready_w = os.pipe()
        holder = threading.Thread(target=lambda: as_other_user(hold_the_folder))
        holder.start()
        os.read(ready_r, 1)
        started = time.monotonic()
        with folder.lock(NAME) as lock:
            assert lock.acquire(1.0), "a flock held by another user stalled the connector"
        assert time.monotonic() - started < 1.0
        holder.join(10)


@pytest.mark.skipif(not IS_ROOT, reason="simulating another local user needs root (chown)")
def test_a_folder_owned_by_another_user_is_refused(base: Path) -> None:
    out = base / "out"
    out.mkdir(mode=0o700)
    os.chown(out, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafePathError, match="belongs to another user"):
        Folder.open(out)


def test_etc_and_a_file_are_refused_as_output_folders(base: Path) -> None:
    (base / "file").write_bytes(b"x")
    with pytest.raises(UnsafePathError, match="is not a folder"):
        Folder.open(base / "file")
    if not IS_ROOT:  # root owns /etc: as root it is "a folder of yours" (and names never clash with its files)
        with pytest.raises(UnsafePathError, match="belongs to another user"):
            Folder.open("/etc")


@PROPERTY
@given(st.text(min_size=1, max_size=60))
def test_any_folder_name_opens_inside_its_parent_or_is_refused_as_a_configuration_problem(name: str) -> None:
    """A host's ``output_dir`` is any string: a NUL, a lone surrogate, slashes, 255+ bytes (``..`` aside: it
    would make folders outside the test's own)."""
    assume(".." not in name.split("/"))
    base = fresh_base()
    try:
        try:
            with Folder.open(f"{base}/{name}") as folder:
                opened: Path | None = folder.path
        except MParticleError:
            opened = None
        if opened is not None:
            assert Path(os.path.realpath(opened)).is_relative_to(base)
            assert stat.S_IMODE(os.stat(opened).st_mode) == 0o700 or opened == base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@PROPERTY
@given(ids, st.text(max_size=40), st.text(max_size=40))
def test_a_request_id_reused_for_another_subject_never_shares_a_file_name(request_id: str, first: str,
                                                                          second: str) -> None:
    """A host that reuses a request id for another person gets other files: the first person's archive and receipt
    are neither overwritten nor handed to the second (the subject is part of every name)."""
    assume(first != second)
    assert stem("mparticle-access", request_id, first) != stem("mparticle-access", request_id, second)


# --- POSIX access lists: a folder others may write through an ACL is theirs too --------------------------------

ACL_TAGS = {"user_obj": 0x01, "user": 0x02, "group_obj": 0x04, "group": 0x08, "mask": 0x10, "other": 0x20}


def acl_bytes(entries: list[tuple[str, int, int]]) -> bytes:
    """``system.posix_acl_access`` as Linux stores it (version 2, then tag, permissions, id per entry)."""
    import struct

    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", ACL_TAGS[tag], perm, ident & 0xFFFFFFFF)
                                           for tag, perm, ident in entries)


def full_acl(named: list[tuple[str, int, int]], mask: int, other: int = 0) -> bytes:
    """A valid access list in the kernel's order: owner rwx, named users, owning group none, named groups,
    the mask, other."""
    users = sorted((e for e in named if e[0] == "user"), key=lambda e: e[2])
    groups = sorted((e for e in named if e[0] == "group"), key=lambda e: e[2])
    return acl_bytes([("user_obj", 7, -1), *users, ("group_obj", 0, -1), *groups, ("mask", mask, -1),
                      ("other", other, -1)])


named_entries = st.lists(st.tuples(st.sampled_from(["user", "group"]), st.integers(0, 7),
                                   st.integers(1000, 1010)), max_size=4,
                         unique_by=lambda e: (e[0], e[2]))


@PROPERTY
@given(named=named_entries, mask=st.integers(0, 7))
def test_an_access_list_is_read_as_acl5_says_whoever_wrote_it(named: list[tuple[str, int, int]], mask: int) -> None:
    """The oracle, from acl(5): a named user or group may write when its entry and the mask both grant write.
    Groups 1000-1010 have no members here, so none of them is anyone's private group."""
    from dsr_framework.files import acl_writers

    owner = 4242
    expected = sorted(f"{tag} {ident}" for tag, perm, ident in named if perm & mask & 2 and ident != owner)
    assert sorted(acl_writers(full_acl(named, mask), owner, 0) or []) == expected


@PROPERTY
@given(raw=st.binary(max_size=64))
def test_an_access_list_that_cannot_be_parsed_is_never_read_as_harmless(raw: bytes) -> None:
    import struct

    from dsr_framework.files import acl_writers
    well_formed = len(raw) >= 4 and (len(raw) - 4) % 8 == 0 and struct.unpack_from("<I", raw)[0] == 2
    assert (acl_writers(raw, 4242, 0) is None) == (not well_formed)


def set_acl(path: Path, acl: bytes) -> None:
    try:
        os.setxattr(path, "system.posix_acl_access", acl)
    except OSError as exc:
        pytest.skip(f"this file system keeps no access lists ({exc.strerror})")


def test_a_folder_whose_access_list_lets_another_user_write_is_refused(base: Path) -> None:
    """0700 with ``user:nobody:rwx`` (the mask shows as group bits, which the private-group rule let through)."""
    out = base / "out"
    out.mkdir(mode=0o700)
    set_acl(out, full_acl([("user", 7, OTHER_UID)], mask=7))
    with pytest.raises(UnsafePathError, match=f"user {OTHER_UID} \\(its access list says so\\).*setfacl -b"):
        Folder.open(out)


def test_an_access_list_whose_mask_withholds_write_is_harmless(base: Path) -> None:
    out = base / "out"
    out.mkdir(mode=0o700)
    set_acl(out, full_acl([("user", 7, OTHER_UID)], mask=5))
    with Folder.open(out) as folder:
        folder.write(NAME, DATA)


def test_a_folder_above_whose_access_list_lets_another_user_write_is_refused(base: Path) -> None:
    above = base / "above"
    above.mkdir(mode=0o755)
    set_acl(above, full_acl([("group", 7, 54321)], mask=7, other=5))
    with pytest.raises(UnsafePathError, match="which other users can change"):
        Folder.open(above / "out")
    assert not (above / "out").exists()


@pytest.mark.parametrize("answer", [OSError(13, "Permission denied"), b"\x02\x00\x00\x00\x01"])
def test_an_access_list_that_cannot_be_read_or_parsed_fails_closed(base: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   answer: object) -> None:
    def getxattr(*args: Any, **kwargs: Any) -> bytes:
        if isinstance(answer, OSError):
            raise answer
        assert isinstance(answer, bytes)
        return answer

    monkeypatch.setattr(os, "getxattr", getxattr)
    with pytest.raises(UnsafePathError, match=r"possibly anyone|which other users can change"):
        Folder.open(base / "out")  # the folders above fail closed first, before anything is created
    assert not (base / "out").exists()
    monkeypatch.undo()
    (base / "out").mkdir(mode=0o700)
    monkeypatch.setattr(os, "getxattr", getxattr)
    with pytest.raises(UnsafePathError, match=r"the folder .*out can be written by possibly anyone"):
        Folder.open(base / "out", create=False)

"""The access and deletion flows on a shared machine: what the host gets back is this request's data, written
by this call or vouched for by this request's signed record, whatever the output folder held before.

Generated folder states (planted files, links out of the folder, folders, FIFOs, hard links, another request's
complete delivery renamed to this request's names, other owners where the suite runs as root) on real
temporary directories, against the sandbox over loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.files import stem
from connector_mparticle.flows.access import KIND
from connector_mparticle.flows.delivery import record_name
from connector_mparticle.flows.subject import subject_digest
from connector_mparticle.sandbox import Durations, Sandbox
from dsr_framework import DsrRequest, Result
from dsr_framework.host import ConnectorHandle
from tests.support.filesystem import (
    FOLDER_KINDS,
    IS_ROOT,
    MARKER,
    NEEDS_ROOT,
    PLANTED_KINDS,
    make_folder,
    make_outside,
    plant,
    snapshot,
    umask,
    usable,
)
from tests.support.hosting import drive, file_stem, mparticle, request

ROOT = Path(__file__).resolve().parents[1]
JANE, OMAR = "jane@example.com", "omar@example.com"
SUFFIXES = (".zip", "-summary.json", "-summary.txt", "-receipt.json")


@dataclass
class Completed:
    """A sandbox, the connector, and two access requests mParticle has completed (state kept for each)."""

    sandbox: Sandbox
    handle: ConnectorHandle
    jane: tuple[DsrRequest, dict[str, Any]]
    donor: dict[str, bytes]  #: Omar's complete delivery, renamed to Jane's names


def seed(sb: Sandbox, email: str) -> None:
    sb.seed_profile({"email": email}, attributes={"plan": "pro"},
                    batches=[{"environment": "production", "events": [{"event_type": "screen_view",
                                                                       "data": {"screen_name": "Home"}}]}])


def completed(sb: Sandbox, handle: ConnectorHandle, request_id: str, email: str) -> tuple[DsrRequest, dict[str, Any]]:
    req = request("access", request_id=request_id, email=email)
    first = handle.handle(req)
    sb.force_status(first.summary["subject_request_id"], "completed")
    assert first.state is not None
    return req, dict(first.state)


@pytest.fixture(scope="module")
def done() -> Iterator[Completed]:
    fast = {"access": Durations(0.2, 0.2), "erasure": Durations(0.2, 0.2)}
    with Sandbox(durations=fast, include_live_profile=True) as sb:
        seed(sb, JANE)
        seed(sb, OMAR)
        handle = mparticle(sb)
        jane = completed(sb, handle, "JANE-1", JANE)
        omar_req, omar_state = completed(sb, handle, "OMAR-1", OMAR)
        folder = Path(tempfile.mkdtemp())
        delivered = handle.handle(replace(omar_req, output_dir=str(folder)), omar_state)
        assert delivered.status == "completed", delivered.message
        omar, mine = file_stem(KIND, omar_req), file_stem(KIND, jane[0])
        donor = {p.name.replace(omar, mine): p.read_bytes() for p in folder.iterdir()}
        shutil.rmtree(folder)
        yield Completed(sb, handle, jane, donor)


def janes_names() -> dict[str, str]:
    name = file_stem(KIND, request("access", request_id="JANE-1", email=JANE))
    names = {f"final{suffix}": name + suffix for suffix in SUFFIXES}
    return {**names, "record": record_name(name), "lock": f".{name}.lock", "temp": f".{name}.zip.0123456789abcdef.tmp"}


planted = st.dictionaries(st.sampled_from(sorted(janes_names())),
                          st.sampled_from(PLANTED_KINDS).filter(lambda k: IS_ROOT or k != "other_owner_file"),
                          max_size=5)
folder_kinds = st.sampled_from(FOLDER_KINDS).filter(lambda k: IS_ROOT or k not in NEEDS_ROOT)


def assert_janes_own(result: Result, out: Path) -> None:
    """Every returned file is a private plain file in the folder, as described, holding Jane's data only."""
    for file in result.files:
        path = Path(file.path)
        st_ = os.lstat(path)
        assert path.parent == Path(os.path.realpath(out)) and stat.S_ISREG(st_.st_mode), file.path
        assert stat.S_IMODE(st_.st_mode) == 0o600 and st_.st_nlink == 1, file.path
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256 and len(data) == file.size_bytes
        assert MARKER not in data, "a planted file was returned"
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                text = b"".join(archive.read(n) for n in archive.namelist())
            assert JANE.encode() in text and OMAR.encode() not in text, "another person's data under Jane's name"
    assert result.summary["identities"]["email"] == [JANE]


# kept whole: one generated state, then every promise checked against it, in the order a reader checks them
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(folder_kinds, planted, st.booleans(), st.sampled_from([0o000, 0o022, 0o077]))
def test_whatever_the_folder_held_the_result_is_this_requests_own_data(
        done: Completed, kind: str, where: dict[str, str], donor: bool, mask: int) -> None:
    base = Path(tempfile.mkdtemp())
    try:
        outside = make_outside(base)
        out = make_folder(base, kind)
        if usable(kind) and kind != "absent":
            if donor:  # another request's whole delivery, renamed: a genuine signed record, but not for Jane
                for name, data in done.donor.items():
                    (out / name).write_bytes(data)
            names = janes_names()
            for place, planted_kind in where.items():
                (out / names[place]).unlink(missing_ok=True)
                plant(out / names[place], planted_kind, outside)
        before_outside, before_out = snapshot(outside), snapshot(out)
        req, state = done.jane
        with umask(mask):
            result = done.handle.handle(replace(req, output_dir=str(out)), state)
        assert snapshot(outside) == before_outside, "something outside the folder changed (a link was followed?)"
        assert sorted(p.name for p in base.iterdir()) == ["out", "outside"]
        # mParticle completed the access: a folder that cannot be used keeps it pending (issue 21), naming the fix
        assert result.status in ("completed", "pending") and result.error is None, result
        if result.status == "pending":
            assert result.action_required is not None and result.action_required.error_class == "configuration"
            assert result.message.startswith("mParticle completed the access request"), result.message
        if not usable(kind):
            assert result.status == "pending" and snapshot(out) == before_out, result.message
            return
        if result.status == "completed":
            assert_janes_own(result, out)
            leftovers = [p.name for p in out.iterdir() if p.name.endswith(".lock")
                         or (p.name.endswith(".tmp") and not p.is_dir())]
            assert leftovers == []
        else:  # only an entry this request must replace being a folder, or an unusable lock file, stops it
            assert set(where.values()) & {"directory", "symlink_to_file", "symlink_to_dir", "dangling_symlink",
                                          "fifo", "hardlink", "other_owner_file"}, result.message
    finally:
        shutil.rmtree(base, ignore_errors=True)


def downloads(sb: Sandbox) -> int:
    return sum(1 for entry in sb.request_log() if entry["path"].startswith("/dsr-results/"))


def test_a_delivery_is_reused_only_while_its_signed_record_vouches_for_every_file(done: Completed,
                                                                                  tmp_path: Path) -> None:
    req, state = done.jane
    req = replace(req, output_dir=str(tmp_path / "out"))
    first = done.handle.handle(req, state)
    assert first.status == "completed"
    count = downloads(done.sandbox)
    again = done.handle.handle(req, state)  # a repeated call (lost response, second worker): same files
    assert [f.sha256 for f in again.files] == [f.sha256 for f in first.files] and downloads(done.sandbox) == count
    summary = Path(next(f.path for f in first.files if f.path.endswith("-summary.json")))
    summary.write_text(summary.read_text().replace("pro", "free"))  # edited by hand
    third = done.handle.handle(req, state)
    assert third.status == "completed" and downloads(done.sandbox) == count + 1, "an edited file was trusted"
    assert "free" not in summary.read_text()
    assert_janes_own(third, tmp_path / "out")


def test_ids_that_once_shared_files_keep_each_subjects_data_apart(done: Completed, tmp_path: Path) -> None:
    """``T:1`` and ``T_1`` used to write the same files: the first result then pointed at the second's export."""
    sb, handle = done.sandbox, done.handle
    results = {}
    for request_id, email in (("T:1", JANE), ("T_1", OMAR)):
        req, state = completed(sb, handle, request_id, email)
        results[email] = handle.handle(replace(req, output_dir=str(tmp_path)), state)
    for email, result in results.items():
        archive = Path(next(f.path for f in result.files if f.path.endswith(".zip")))
        with zipfile.ZipFile(archive) as zf:
            text = b"".join(zf.read(n) for n in zf.namelist())
        other = OMAR if email == JANE else JANE
        assert email.encode() in text and other.encode() not in text
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == result.files[0].sha256
    assert not {f.path for f in results[JANE].files} & {f.path for f in results[OMAR].files}


def test_a_symlinked_output_folder_is_refused_before_anything_is_sent(done: Completed, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "out").symlink_to(tmp_path / "real", target_is_directory=True)
    before = len(done.sandbox.dsrs())
    result = done.handle.handle(request("access", request_id="LINKED-1", output_dir=str(tmp_path / "out")))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "symbolic link" in result.message and len(done.sandbox.dsrs()) == before
    assert list((tmp_path / "real").iterdir()) == []


def test_the_deletion_receipt_is_private_and_named_from_the_whole_request_id(done: Completed,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "receipts"
    with umask(0o000):
        result, _ = drive(done.handle, request("deletion", request_id="ERASE:1", email="gone@example.com",
                                               output_dir=str(out)))
    assert result.status == "completed", result.message
    (file,) = result.files
    name = stem("mparticle-erasure", "ERASE:1", subject_digest(request(email="gone@example.com")))
    assert Path(file.path) == out / f"{name}-receipt.json"
    assert stat.S_IMODE(os.stat(file.path).st_mode) == 0o600 and stat.S_IMODE(out.stat().st_mode) == 0o700
    assert sorted(p.name for p in out.iterdir()) == [Path(file.path).name]
    assert json.loads(Path(file.path).read_text())["request"]["request_id"] == "ERASE:1"


WORKER = """
import json, sys
from dsr_framework import DsrRequest
from dsr_framework.host import load_host
config, request, state = json.load(open(sys.argv[1]))
host = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}})
print(json.dumps(host.connector("mparticle").handle(DsrRequest.from_dict(request), state).to_dict()))
"""


STAGES = {  # what the folder shows at each moment of a delivery
    "locked": lambda names: any(n.endswith(".lock") for n in names),
    "downloading": lambda names: any(n.endswith(".tmp") for n in names),
    "renaming": lambda names: any(not n.startswith(".") for n in names) and not any(
        n.endswith(".delivered") for n in names),
    "delivered": lambda names: any(n.endswith(".delivered") for n in names),
}


def kill_when(worker: subprocess.Popen[bytes], out: Path, stage: str) -> bool:
    """SIGKILL ``worker`` as soon as ``out`` shows ``stage`` (or when it ends by itself first); whether the
    stage was seen while the worker ran."""
    seen = STAGES[stage]
    deadline = time.monotonic() + 60
    found = False
    while worker.poll() is None and time.monotonic() < deadline:
        try:
            names = os.listdir(out)
        except FileNotFoundError:
            names = []
        if seen(names):
            found = True
            break
        time.sleep(0.0005)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_worker_killed_at_any_moment_leaves_nothing_a_later_call_trusts(tmp_path: Path, stage: str) -> None:
    """SIGKILL while locking, downloading, renaming or after delivering: the next call completes with whole,
    matching files of this request and sweeps what the dead worker left."""
    # 1 MB of padding: a download (and its check) long enough to be cut mid-way, short enough for the fast loop;
    # the worker must be seen at the stage, so a delivery that outruns the watcher fails here instead of proving
    # nothing
    with Sandbox(durations={"access": Durations(0.1, 0.1)}, include_live_profile=True,
                 results_padding_bytes=1024 * 1024) as sb:
        seed(sb, JANE)
        config = sb.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 2})
        handle = mparticle(sb)
        req, state = completed(sb, handle, "KILL-1", JANE)
        out = tmp_path / "out"
        job = tmp_path / "job.json"
        job.write_text(json.dumps([config, replace(req, output_dir=str(out)).to_dict(), state]))
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(job)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        assert kill_when(worker, out, stage), f"the worker finished before the folder showed {stage!r}"
        result = handle.handle(replace(req, output_dir=str(out)), state)
    assert result.status == "completed", result.message
    assert_janes_own(result, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(Path(f.path).name for f in result.files), record_name(file_stem(KIND, req))])


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A small file system of its own at ``path`` (root only; the test is skipped where mounting is refused)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small file system needs root")
def test_a_full_disk_keeps_the_access_request_pending_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with Sandbox(durations={"access": Durations(0.1, 0.1)}, include_live_profile=True,
                 results_padding_bytes=2 * 1024 * 1024) as sb, tmpfs(tmp_path / "small", "size=1m,mode=0700") as small:
        seed(sb, JANE)
        handle = mparticle(sb)
        req, state = completed(sb, handle, "FULL-1", JANE)
        full = handle.handle(replace(req, output_dir=str(small / "out")), state)
        assert full.status == "pending" and full.state, full.message
        assert "the output folder has no space left" in full.message, full.message
        assert [p.name for p in (small / "out").iterdir()] == [], "a partial file or a lock was left"
        roomy = handle.handle(replace(req, output_dir=str(tmp_path / "roomy")), full.state)
        assert roomy.status == "completed", roomy.message


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only file system needs root")
def test_a_read_only_output_folder_fails_before_anything_is_sent(done: Completed, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
        before = len(done.sandbox.dsrs())
        result = done.handle.handle(request("access", request_id="RO-1", output_dir=str(read_only / "out")))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "Read-only file system" in result.message and len(done.sandbox.dsrs()) == before

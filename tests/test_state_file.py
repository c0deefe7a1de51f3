"""``--state`` files: any edit is refused, naming what changed; a file signed with other credentials is refused
saying so; links, FIFOs and hard links are refused without hanging; a link planted at the lock path is never
followed. Real temporary directories; hypothesis generates the edits."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connector_mparticle.cli.exits import CliError
from connector_mparticle.cli.state_file import PROTECTED, Saved, StateFile, state_file_key
from dsr_framework import DsrRequest, Result
from tests.support.filesystem import make_outside, snapshot, umask

KEY = state_file_key(("workspace-key", "workspace-secret-one"))
ROTATED = state_file_key(("workspace-key", "workspace-secret-two"))
REQUEST = DsrRequest("TICKET-7", "deletion", "gdpr", {"email": "jane@example.com", "customer_id": "C-7"},
                     datetime(2026, 11, 29, 10, 0, tzinfo=UTC), "/srv/exports/jane")
RESULT = Result("TICKET-7", "deletion", "pending", "mParticle reports the erasure pending",
                state={"v": 3, "parts": [], "mac": "0" * 64}, next_check_at=datetime(2026, 11, 30, tzinfo=UTC),
                summary={"subject_request_id": "8f0e5c1a-0000-4000-8000-000000000001"})


def quiet(_: str) -> None:
    pass


def write_state(path: Path, request: DsrRequest = REQUEST, result: Result | None = RESULT) -> None:
    with StateFile.locked(path, KEY, 1, quiet) as state:
        state.write(request, result)


def read_state(path: Path, key: bytes = KEY) -> Saved | None:
    with StateFile.locked(path, key, 1, quiet) as state:
        return state.read()


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="state-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_state_file_reads_back_what_was_written_private_and_alone(folder: Path) -> None:
    with umask(0o000):
        write_state(folder / "new" / "state.json")
    saved = read_state(folder / "new" / "state.json")
    assert saved is not None and saved.request == REQUEST and saved.result == RESULT
    assert stat.S_IMODE((folder / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "new" / "state.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in (folder / "new").iterdir()) == ["state.json"], "the lock file must not pile up"


# --- edits ---------------------------------------------------------------------------------------------------

def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON document (to a value, at any depth)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*path, index))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=6)


@st.composite
def edits(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one value replaced, one key removed, or one key added, anywhere."""
    edited = json.loads(json.dumps(document))
    path = draw(st.sampled_from([p for p in leaves(edited) if p]))
    *parents, last = path
    holder = edited
    for step in parents:
        holder = holder[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "remove":
        holder.pop(last)
    elif action == "add" and isinstance(holder[last], dict):
        holder[last][draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    else:
        holder[last] = draw(json_values)
    return edited


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_edit_to_a_state_file_is_refused_and_never_read_as_a_request(data: st.DataObject) -> None:
    folder = Path(tempfile.mkdtemp(prefix="state-"))
    try:
        path = folder / "state.json"
        write_state(path)
        original = json.loads(path.read_text())
        edited = data.draw(edits(original))
        assume(edited != original)
        path.write_text(json.dumps(edited, indent=data.draw(st.sampled_from([None, 2]))))
        with pytest.raises(CliError) as refused:
            read_state(path)
        assert refused.value.kind.startswith("state_file"), refused.value.kind
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(("field", "value"), [
    ("request_id", "TICKET-8"), ("type", "access"), ("regulation", "ccpa"),
    ("identities", {"email": "dave@example.com", "customer_id": "C-7"}), ("output_dir", "/tmp/elsewhere"),
])
def test_an_edited_state_file_names_what_was_changed(folder: Path, field: str, value: Any) -> None:
    path = folder / "state.json"
    write_state(path)
    document = json.loads(path.read_text())
    document["request"][field] = value
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(CliError, match="cannot be trusted: it was changed after mparticle-dsr wrote it: "
                       + PROTECTED[field].replace("(", r"\(").replace(")", r"\)")) as refused:
        read_state(path)
    assert "Nothing was sent" in refused.value.message and "dave@example.com" not in refused.value.message
    assert any("--request-id" in hint for hint in refused.value.hints)


def test_an_edited_result_is_named_too(folder: Path) -> None:
    path = folder / "state.json"
    write_state(path)
    document = json.loads(path.read_text())
    document["result"]["status"] = "completed"
    path.write_text(json.dumps(document))
    with pytest.raises(CliError, match="changed after mparticle-dsr wrote it: its last result"):
        read_state(path)


def test_a_state_file_signed_with_other_credentials_is_refused_saying_so(folder: Path) -> None:
    path = folder / "state.json"
    write_state(path)
    with pytest.raises(CliError, match="signed with other DSR credentials"):
        read_state(path, ROTATED)


def test_an_unsigned_state_file_is_refused(folder: Path) -> None:
    path = folder / "state.json"
    write_state(path)
    document = json.loads(path.read_text())
    del document["integrity"]
    path.write_text(json.dumps(document))
    with pytest.raises(CliError, match="carries no signature"):
        read_state(path)


# --- what the path is ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "fifo", "hardlink", "directory"])
def test_a_state_path_that_is_not_a_plain_file_of_ours_is_refused_at_once(folder: Path, kind: str) -> None:
    real = folder / "real.json"
    write_state(real)
    path = folder / "state.json"
    if kind == "symlink":
        path.symlink_to(real)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "hardlink":
        os.link(real, path)
    else:
        path.mkdir()
    started = time.monotonic()
    with pytest.raises(CliError, match="cannot use --state"):
        read_state(path)
    assert time.monotonic() - started < 2, "a FIFO must not hang the command"


def test_a_link_planted_at_the_lock_path_is_refused_and_its_target_untouched(folder: Path) -> None:
    outside = make_outside(folder)
    (folder / ".state.json.lock").symlink_to(outside / "bait.txt")
    before = snapshot(outside)
    with pytest.raises(CliError, match="symbolic link"):
        write_state(folder / "state.json")
    assert snapshot(outside) == before
    assert not (folder / "state.json").exists()


def test_a_state_file_in_a_folder_others_can_write_is_refused(folder: Path) -> None:
    shared = folder / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(CliError, match="can be written by every user"):
        write_state(shared / "state.json")
    assert list(shared.iterdir()) == []


def test_what_a_command_killed_mid_write_left_is_swept_and_the_last_state_survives(folder: Path) -> None:
    path = folder / "state.json"
    write_state(path)
    (folder / ".state.json.0123456789abcdef.tmp").write_text('{"request": "half a state"')  # killed mid-write
    saved = read_state(path)
    assert saved is not None and saved.request == REQUEST
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]


LONG_NAME_CHARS = st.sampled_from("abcXYZ019._-é")


@settings(max_examples=40, deadline=None)
@given(name=st.tuples(st.integers(180, 255), st.text(LONG_NAME_CHARS, min_size=1, max_size=40)).map(
    lambda spec: (spec[1] * 255).encode()[:spec[0]].decode("utf-8", "ignore")).filter(lambda n: n.strip(".")))
def test_any_state_file_name_the_file_system_takes_can_be_locked_and_written(name: str) -> None:
    """A 255-byte ``--state`` name used to end in "failed unexpectedly": its lock file, ``.NAME.lock``, was
    longer than a name may be. Derived names now start with a digest of a long name."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        write_state(path)
        assert read_state(path) is not None
        assert [p.name for p in Path(scratch).iterdir()] == [name]


def test_a_state_file_name_longer_than_the_file_system_takes_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="not a usable file name") as refused:
        write_state(tmp_path / ("a" * 256))
    assert refused.value.exit_code == 2


def test_a_state_file_built_to_cost_memory_is_refused_before_it_is_parsed(folder: Path) -> None:
    """Just under the old 64 MB cap, 21 million empty lists took 1.7 GB and 22 s to parse before the HMAC check
    refused them. A real state file is far under the 4 MB cap; within it, the containers are judged first."""
    import tracemalloc

    from connector_mparticle.cli.state_file import MAX_BYTES

    path = folder / "state.json"
    write_state(path)
    assert path.stat().st_size < MAX_BYTES // 16  # what a real state file takes
    path.write_bytes(b'{"request": {}, "x": [' + b"[]," * ((MAX_BYTES - 64) // 3) + b"[]]}")
    tracemalloc.start()
    try:
        with pytest.raises(CliError, match=r"unreadable .*arrays and objects"):
            read_state(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_BYTES * 4, f"reading it peaked at {peak / (1 << 20):.0f} MB"
    path.write_bytes(b'{"request": {}, "x": "' + b"x" * MAX_BYTES + b'"}')
    with pytest.raises(CliError, match="larger than"):
        read_state(path)

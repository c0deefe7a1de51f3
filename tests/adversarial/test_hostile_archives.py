"""Class 6: hostile results archives are refused cleanly and in constant memory.

Served as mParticle's results file to a real access request: every archive problem (bad CRC, corrupt
deflate data, encryption, an unknown compression method, a truncated file, wrong-typed fields, lines that
are not JSON or far too long) keeps the request ``pending`` with its state and the reason (mParticle completed
it; the results are downloaded again at the next check), and leaves nothing in the output directory (no
download, no partial summary, no temporary file). mParticle's own published
sample layout, macOS metadata included, is read.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.api.results import ArchiveProblem, summarise
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer
from tests.support.hosting import request

PROFILE = {"id": 2295239505589790330, "created_timestamp_ms": 1573681196751, "last_stored_timestamp_ms": 0,
           "is_opted_out": False, "limit_ad_tracking": None, "device_identities": [],
           "user_identities": [{"type": "customer_id", "encoding": "none", "value": "86d17d97"}],
           "account_userattributes": {}, "user_attributes": {"food": "pie"}, "audience_memberships": []}
BATCH = {"events": [{"event_type": "custom_event", "data": {"event_name": "Viewed", "timestamp_unixtime_ms":
                                                           "1527092401214"}}],
         "user_identities": {"email": "jane@example.com"}, "environment": "Development"}


def archive(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def jsonl(*lines: Any) -> bytes:
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()


def corrupt_crc(data: bytes) -> bytes:
    """Change one byte of a stored entry's content, leaving its recorded CRC as it was."""
    index = data.index(b'"food"')
    return data[:index] + b"'" + data[index + 1:]


def corrupt_deflate(data: bytes) -> bytes:
    start = 30 + len("profile.jsonl")
    return data[:start] + bytes(b ^ 0xFF for b in data[start:start + 16]) + data[start + 16:]


def encrypted(data: bytes) -> bytes:
    """Set the 'encrypted' flag on every entry (local and central headers)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at != -1:
            flags = struct.unpack_from("<H", out, at + offset)[0] | 0x1
            struct.pack_into("<H", out, at + offset, flags)
            at = out.find(signature, at + 4)
    return bytes(out)


def unknown_method(data: bytes) -> bytes:
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = out.find(signature)
        while at != -1:
            struct.pack_into("<H", out, at + offset, 77)
            at = out.find(signature, at + 4)
    return bytes(out)


GOOD_PROFILE = archive([("profile.jsonl", jsonl(PROFILE))], zipfile.ZIP_STORED)
HOSTILE = {
    "bad-crc": corrupt_crc(GOOD_PROFILE),
    "corrupt-deflate": corrupt_deflate(archive([("profile.jsonl", jsonl(PROFILE) * 50)])),
    "encrypted": encrypted(archive([("profile.jsonl", jsonl(PROFILE))])),
    "unknown-compression": unknown_method(archive([("profile.jsonl", jsonl(PROFILE))])),
    "truncated": archive([("profile.jsonl", jsonl(PROFILE) * 100)])[:200],
    "not-a-zip": b"<html>results are here</html>",
    "identities-a-string": archive([("profile.jsonl", jsonl({**PROFILE, "user_identities": "jane@example.com"}))]),
    "id-an-object": archive([("profile.jsonl", jsonl({**PROFILE, "id": {"x": 1}}))]),
    "attributes-a-list": archive([("profile.jsonl", jsonl({**PROFILE, "user_attributes": ["a"]}))]),
    "identity-entry-a-number": archive([("profile.jsonl", jsonl({**PROFILE, "user_identities": [5]}))]),
    "events-a-string": archive([("b-1.jsonl", jsonl({**BATCH, "events": "many"}))]),
    "event-type-a-number": archive([("b-1.jsonl", jsonl({**BATCH, "events": [{"event_type": 5}]}))]),
    "batch-an-array": archive([("b-1.jsonl", jsonl([BATCH]))]),
    "line-not-json": archive([("b-1.jsonl", jsonl(BATCH) + b"{not json\n")]),
    "line-not-utf8": archive([("b-1.jsonl", b"\xff\xfe\x00{}\n")]),
    "line-of-20-mb": archive([("b-1.jsonl", b"[" + b"1," * 10_000_000 + b"1]\n")]),
    "line-of-6-mb-stored": archive([("b-1.jsonl", b'["' + b"x" * 6_000_000 + b'"]\n')], zipfile.ZIP_STORED),
    "zip-bomb": archive([("b-1.jsonl", b"\n" * 80_000_000)]),
}


def finish_access(sandbox: Sandbox, hostile: HostileServer, folder: Path, content: bytes) -> Any:
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = handle_for(config_for(hostile, sandbox, timeouts={"total_seconds": 30}))
    req = request("access", output_dir=str(folder))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(200, {"Content-Type": "application/zip"},
                                                                        content))
    return handle.handle(req, first.state)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_archive_keeps_the_request_pending_and_leaves_nothing(sandbox: Sandbox, hostile: HostileServer,
                                                                       tmp_path: Path, name: str) -> None:
    result = finish_access(sandbox, hostile, tmp_path, HOSTILE[name])
    assert result.status == "pending" and result.state is not None, result.message
    assert result.message.startswith("mParticle completed the access request") and "results archive" in result.message
    assert list(tmp_path.iterdir()) == [], "the refused download or a partial summary was left behind"


def test_mparticles_published_layout_with_macos_metadata_is_read(sandbox: Sandbox, hostile: HostileServer,
                                                                 tmp_path: Path) -> None:
    content = archive([("profile.jsonl", jsonl(PROFILE)), ("__MACOSX/._profile.jsonl", b"\x00\x05\x16\x07Mac OS X"),
                       ("9b1b6077-bc03-4768-87ee-78803965a5ef-20-118.jsonl", jsonl(BATCH)),
                       ("__MACOSX/._9b1b6077-bc03-4768-87ee-78803965a5ef-20-118.jsonl", b"\x00\x05\x16\x07\xff")])
    result = finish_access(sandbox, hostile, tmp_path, content)
    assert result.status == "completed", result.message
    assert result.summary["profiles_found"] == 1 and result.summary["profiles"][0]["mpid"] == str(PROFILE["id"])
    assert result.summary["identities"] == {"customer_id": ["86d17d97"], "email": ["jane@example.com"]}
    assert result.summary["event_batches"] == 1 and result.summary["first_event_unixtime_ms"] == 1527092401214


def test_a_single_huge_line_is_read_in_constant_memory(tmp_path: Path) -> None:
    """A 60 MB line (stored, so nothing caps it but the reader) is refused without holding it."""
    path = tmp_path / "huge.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf, zf.open("b-1.jsonl", "w", force_zip64=True) as entry:
        for _ in range(60):
            entry.write(b"x" * (1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveProblem, match="longer than"):
            summarise(path, 1 << 40)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * (1 << 20), f"reading the archive peaked at {peak / (1 << 20):.0f} MB"


def many_records(count: int, zip64: bool) -> bytes:
    """A zip whose central directory holds ``count`` records, all naming one empty entry (53 bytes each): the
    archive zipfile would turn into ``count`` objects before anything could count them."""
    name = b"a.jsonl"
    local = struct.pack(zipfile.structFileHeader, zipfile.stringFileHeader, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                        len(name), 0) + name
    record = struct.pack(zipfile.structCentralDir, zipfile.stringCentralDir, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                         len(name), 0, 0, 0, 0, 0, 0) + name
    directory = record * count
    if not zip64:
        return local + directory + struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0,
                                               min(count, 0xFFFF), min(count, 0xFFFF), len(directory), len(local), 0)
    end64 = struct.pack(zipfile.structEndArchive64, zipfile.stringEndArchive64, 44, 45, 45, 0, 0, count, count,
                        len(directory), len(local))
    locator = struct.pack(zipfile.structEndArchive64Locator, zipfile.stringEndArchive64Locator, 0,
                          len(local) + len(directory), 1)
    end = struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                      0xFFFFFFFF, 0)
    return local + directory + end64 + locator + end


@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
def test_a_central_directory_of_a_million_records_is_refused_before_zipfile_reads_it(tmp_path: Path,
                                                                                     zip64: bool) -> None:
    """The ZIP64 archive declares its million records; the plain one says 65,535 (its field's largest value)
    while its directory holds them all: zipfile reads what the size says, so the records are counted."""
    path = tmp_path / "records.zip"
    path.write_bytes(many_records(1_000_000 if zip64 else 65_535 * 3, zip64))  # 53 MB; 10 MB
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveProblem, match="more than 10000 entries"):
            summarise(path, 1 << 40)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * (1 << 20), f"judging the directory peaked at {peak / (1 << 20):.0f} MB"


def test_records_within_the_limit_are_read_as_usual(tmp_path: Path) -> None:
    path = tmp_path / "few.zip"
    path.write_bytes(many_records(3, zip64=True))
    assert summarise(path, 1 << 40)["archive_entries"] == ["a.jsonl"] * 3


def test_the_deadline_is_checked_inside_a_line_of_many_events(tmp_path: Path) -> None:
    """A line of 60,000 events (1.1 MB, under every cap) is checked every EVENTS_PER_CHECK events, not only
    between lines and chunks: a line costly to process cannot hold a call past its deadline."""
    from connector_mparticle.api.results import CHUNK_BYTES, EVENTS_PER_CHECK

    events = 60_000
    line = json.dumps({"events": [{"event_type": "custom_event"}] * events}).encode()
    path = tmp_path / "events.zip"
    path.write_bytes(archive([("batch.jsonl", line + b"\n")], zipfile.ZIP_STORED))
    checks: list[None] = []
    summary = summarise(path, 1 << 40, check=lambda: checks.append(None))
    assert summary["events"] == events
    assert len(checks) >= events // EVENTS_PER_CHECK + len(line) // CHUNK_BYTES

"""Class 12: the result handed to the host and the summaries are bounded, whatever the results archive holds.

Before the caps, a 565 KB results zip of profiles with many attributes gave a 26 MB result and 114 MB more peak
memory. Now the summary lists the first few of each kind and counts what it leaves out ("and 3,412 more user
attributes not listed; the full data is in the export file"); the export file keeps everything. Properties
over generated archives (any number of profiles, attributes, identities, audiences, consent purposes, events and
entries; strings of any length and any characters, escapes included) hold the summary, a merge of two and the
text summary under :data:`~connector_mparticle.api.summary.SUMMARY_BOUND`, and reading stays in bounded memory.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.api.results import merge, summarise, summary_text
from connector_mparticle.api.summary import CAPS, SUMMARY_BOUND
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import completed_access, zip_answer
from tests.adversarial.hostile import HostileServer

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: What else a result carries (receipts, audit trail, messages): the result stays under this.
RESULT_BOUND = 2 * SUMMARY_BOUND
#: Strings of any characters, and long ones whose JSON escapes are longest (a control character is six bytes of
#: JSON, an emoji twelve).
texts = st.text(max_size=30) | st.sampled_from(["\x00" * 200, "\U0001F600" * 200, '"\\' * 100, "é" * 300])


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def jsonl(lines: list[Any]) -> bytes:
    return ("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n").encode()


def profile(number: int, text: str, many: int) -> dict[str, Any]:
    """A profile line of mParticle's format with ``many`` of everything, each string ``text``-flavoured."""
    return {"id": number, "created_timestamp_ms": 1, "last_stored_timestamp_ms": 2, "is_opted_out": False,
            "user_identities": [{"type": f"{text}{i % 40}", "encoding": "none", "value": f"{text}{i}"}
                                for i in range(many)],
            "device_identities": [{"type": "ios_idfa", "value": f"{text}-{i}"} for i in range(many)],
            "user_attributes": {f"{text}{i}": [text] * (i % 9) if i % 2 else text for i in range(many)},
            "account_userattributes": {f"a{text}{i}": i for i in range(many)},
            "audience_memberships": [{"audience_id": i, "audience_name": text, "extra": {"x": [text]}}
                                     for i in range(many)],
            "consent_state": {f"{text}r{r}": {f"{text}p{i}": {"consented": True, "document": text}
                                               for i in range(many // 4)} for r in range(4)}}


def batch(text: str, many: int) -> dict[str, Any]:
    return {"user_identities": {f"{text}{i}": f"{text}v{i}" for i in range(many)},
            "events": [{"event_type": f"{text}{i}", "data": {"timestamp_unixtime_ms": str(1_500_000_000_000 + i)}}
                       for i in range(many)]}


archives = st.builds(
    lambda profiles, batches, entries, text, many: zip_of(
        [("profile.jsonl", jsonl([profile(i, text, many) for i in range(profiles)]))]
        + [(f"batches-{i}.jsonl", jsonl([batch(text, many)] * 3)) for i in range(batches)]
        + [(f"e{text[:50]}/{i}.txt", b"x") for i in range(entries)]),
    profiles=st.integers(0, 8), batches=st.integers(0, 2), entries=st.integers(0, 80), text=texts,
    many=st.integers(0, 40))


def report(summary: dict[str, Any]) -> dict[str, Any]:
    """The document the access flow writes around a summary (what ``summary_text`` reads)."""
    return {"request": {"request_id": "r-1", "regulation": "gdpr", "submitted_at": "2026-11-29T10:00:00Z",
                        "identities": {"email": "j***@example.com"}},
            "mparticle": {"downloaded_at": "2026-11-29T10:00:00Z", "requests": []}, "results": summary}


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@PROPERTY
@given(content=archives, other=archives)
def test_summaries_merges_and_text_stay_under_the_bound_whatever_the_archive_holds(
        tmp_path_factory: Any, content: bytes, other: bytes) -> None:
    folder = tmp_path_factory.mktemp("zips")
    summaries = []
    for name, data in (("a.zip", content), ("b.zip", other)):
        (folder / name).write_bytes(data)
        summaries.append(summarise(folder / name, 1 << 30))
    for summary in (*summaries, merge(summaries)):
        assert len(json.dumps(summary).encode()) <= SUMMARY_BOUND
        assert len(summary_text(report(summary)).encode()) <= SUMMARY_BOUND
        assert len(summary["profiles"]) <= CAPS["profiles"]
        for entry in summary["profiles"]:
            assert len(entry["user_attributes"]) <= CAPS["user_attributes"]


def test_the_worst_case_archive_stays_under_the_bound(tmp_path: Path) -> None:
    """Every cap filled, every string at its longest JSON form: the bound holds with room to spare."""
    worst = "\U0001F600" * 200
    path = tmp_path / "results.zip"
    path.write_bytes(zip_of([("profile.jsonl", jsonl([profile(i, worst + str(i), 60) for i in range(8)])),
                             ("batches.jsonl", jsonl([batch(worst, 60)])),
                             *((f"{worst}/{i}.txt", b"x") for i in range(80))]))
    summary = summarise(path, 1 << 30)
    size = len(json.dumps(summary).encode())
    assert size <= SUMMARY_BOUND, size
    assert len(summary_text(report(summary)).encode()) <= SUMMARY_BOUND


def test_what_is_left_out_is_counted_and_said(tmp_path: Path) -> None:
    path = tmp_path / "results.zip"
    path.write_bytes(zip_of([("profile.jsonl", jsonl([profile(7, "k", 3432)]))]))  # 2 x 3,432 attributes
    summary = summarise(path, 1 << 30)
    (listed,) = summary["profiles"]
    assert len(listed["user_attributes"]) == CAPS["user_attributes"]
    assert listed["not_listed"]["user_attributes"] == 2 * 3432 - CAPS["user_attributes"]
    assert len(summary["identities"]) == CAPS["identity_types"]  # 40 user identity types and ios_idfa: 41
    assert summary["not_listed"]["identity_types"] == 41 - CAPS["identity_types"]
    assert summary["not_listed"]["identity_values"] > 0
    text = summary_text(report(summary))
    assert "and 6,844 more user attributes not listed; the full data is in the export file" in text
    assert "6864 user attribute(s)" in text


def test_a_profile_in_both_archives_of_a_request_is_counted_once(tmp_path: Path) -> None:
    """An access request with an mpid is two OpenDSR requests whose archives may hold the same profile."""
    path = tmp_path / "results.zip"
    path.write_bytes(zip_of([("profile.jsonl", jsonl([profile(i, "v", 3) for i in range(CAPS["profiles"])]))]))
    one = summarise(path, 1 << 30)
    both = merge([one, one])
    assert one["profiles_found"] == both["profiles_found"] == CAPS["profiles"]
    assert both["identities"] == one["identities"] and both["not_listed"] == {}


@pytest.mark.slow  # a memory measurement under tracemalloc, which makes every allocation slow: ~11 s
def test_reading_a_hostile_archive_takes_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "results.zip"
    path.write_bytes(zip_of([(f"p{n}/profile.jsonl", jsonl([profile(n * 100 + i, "m", 300) for i in range(10)]))
                             for n in range(6)]))
    tracemalloc.start()
    try:
        summary = summarise(path, 1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["profiles_found"] == 60
    assert peak < 16 * (1 << 20), f"reading the archive peaked at {peak / (1 << 20):.0f} MB"


@pytest.mark.slow  # builds and downloads a half-megabyte hostile archive: ~15 s
def test_a_hostile_half_megabyte_results_zip_gives_a_small_result(sandbox: Sandbox, hostile: HostileServer,
                                                                  tmp_path: Path) -> None:
    """End to end, the measurement in docs/security.md ("Sizes"): what used to be a 26 MB result is a few dozen KB."""
    content = zip_of([(f"p{n}/profile.jsonl", jsonl([
        {"id": n * 1000 + i, "user_attributes": {f"{n}_{i}_{a}_" + "k" * 120: f"v{a}" * 60 for a in range(300)},
         "user_identities": [{"type": "email", "value": f"u{n}_{i}_{k}@example.com"} for k in range(50)],
         "audience_memberships": [{"audience_name": f"aud {k}"} for k in range(50)]} for i in range(9)]))
        for n in range(26)])
    assert len(content) < 600 * 1024
    handle, req, state = completed_access(sandbox, hostile, tmp_path, zip_answer(content),
                                          timeouts={"total_seconds": 60})
    result = handle.handle(req, state)
    assert result.status == "completed", result.message
    assert len(json.dumps(result.to_dict()).encode()) <= RESULT_BOUND
    assert result.summary["profiles_found"] == 26 * 9 and result.summary["not_listed"]["profiles"] == 26 * 9 - 5
    archive = next(f for f in result.files if f.path.endswith(".zip"))
    assert Path(archive.path).read_bytes() == content, "the export file keeps everything"

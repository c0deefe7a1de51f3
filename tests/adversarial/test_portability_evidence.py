"""Portability and evidence files under attack (issue 24, re-attack findings S1, S2, S6, N6-N8).

* S1: a results line carrying the workspace secret as JSON ``\\u`` escapes passes the archive check (which does not
  decode gigabytes); the portable files decode it. Every portable file passes the redactor's check on its final
  bytes: none is written and the request stays pending for a person.
* S6: local trouble writing the portable files after mParticle completed keeps the request pending with its state.
* S2: the small tables are bounded by bytes as well as rows; what was not kept is counted.
* N6/N7: the evidence record copies no identifier from remote free text, and hides a request id holding one in
  another spelling.
* N8: the JSON document keeps each batch and event whole.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.api import portable
from connector_mparticle.api.portable import Tables
from connector_mparticle.errors import UnsafeResponseError
from connector_mparticle.flows.evidence import evidence_record, write_evidence
from connector_mparticle.sandbox import Sandbox
from dsr_framework.models import AuditEvent, DsrRequest, Result
from dsr_framework.redact import Redactor
from tests.adversarial.conftest import CREDS, config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

MARK = "PLACEHOLDERMARK"
ESCAPED = "".join(f"\\u{ord(c):04x}" for c in CREDS.workspace_secret)


def _escaped_secret(seen: Seen, forward: Any) -> Answer:
    """mParticle's archive, with the secret written as JSON escapes where the mark was."""
    answer = forward()
    if answer.status != 200:
        return answer
    source, out = zipfile.ZipFile(io.BytesIO(answer.body)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            zf.writestr(info.filename, source.read(info).replace(MARK.encode(), ESCAPED.encode()))
    return Answer(200, {"Content-Type": "application/zip"}, out.getvalue())


def _portability(sandbox: Sandbox, hostile: HostileServer, out: Path) -> tuple[Any, Any]:
    handle = handle_for(config_for(hostile, sandbox))
    req = request("portability", request_id="host-req-1", output_dir=str(out))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    return handle, handle.handle(req, first.state)


def test_a_secret_escaped_in_a_results_line_is_never_written_in_clear(sandbox: Sandbox, hostile: HostileServer,
                                                                      tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"nick": MARK}, batches=[{
        "events": [{"event_type": "custom_event", "data": {"event_name": "x", "custom_attributes": {"n": MARK}}}],
        "user_attributes": {"nick": MARK}}])
    hostile.on("GET", r"^/dsr-results/", _escaped_secret)
    _, result = _portability(sandbox, hostile, tmp_path)
    # The archive itself is refused as it is read (its escapes are undone there too), before anything is written:
    # the request stays pending and the archive is downloaded again at the next check.
    assert result.status == "pending" and result.state is not None, result.message
    assert "credential" in result.message
    assert list(tmp_path.iterdir()) == []


def _stream(folder: Any, pieces: list[bytes]) -> None:
    from connector_mparticle.flows.writing import CheckedStream  # here: the module is new (issue 24)
    staged = folder.stage("big.txt")
    try:
        with CheckedStream(Redactor([CREDS.workspace_secret]), staged, "a file") as stream:
            for piece in pieces:
                stream.write(piece)
    finally:
        staged.discard()


def test_a_checked_stream_sees_a_secret_split_across_blocks(tmp_path: Path) -> None:
    """Seven characters of the secret (escaped) end one block and seven start the next: neither block leaks
    alone, the two together do."""
    from connector_mparticle.files import Folder
    first, second = ESCAPED[:6 * 7].encode(), ESCAPED[6 * 7:6 * 14].encode()
    with Folder.open(str(tmp_path)) as folder:
        _stream(folder, [b"x" * (1 << 20), first])  # each half alone is written
        _stream(folder, [second])
        with pytest.raises(UnsafeResponseError):
            _stream(folder, [b"x" * (1 << 20) + first, second])
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_of_a_portable_file_keeps_the_request_pending(sandbox: Sandbox, hostile: HostileServer,
                                                                         tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"}, batches=[{"events": []}])
    handle = handle_for(config_for(hostile, sandbox))
    req = request("portability", request_id="host-req-1", output_dir=str(tmp_path))
    first = handle.handle(req)
    squat = tmp_path / "squat"
    squat.mkdir()
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    # the first call writes everything; the name of the identities table is then taken by a folder
    done = handle.handle(req, first.state)
    [identities] = [Path(f.path) for f in done.files if f.path.endswith("-identities.csv")]
    identities.unlink()
    squat.rename(identities)
    again = handle.handle(req, done.state)
    assert again.status == "pending" and again.state is not None and again.action_required is not None
    assert again.error is None or again.error.error_class != "configuration"
    identities.rmdir()
    assert handle.handle(req, again.state).status == "completed" and identities.is_file()


def test_no_flow_writes_a_file_except_through_the_checked_writer() -> None:
    """The rule lives once: a flow that calls ``Folder.write`` itself would skip the check on final bytes."""
    flows = Path(__file__).resolve().parents[2] / "connector_mparticle" / "flows"
    direct = [p.name for p in flows.glob("*.py") if p.name != "writing.py" and "folder.write(" in p.read_text()]
    assert direct == []


def test_the_small_tables_are_bounded_by_bytes_and_count_what_they_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portable, "MAX_BYTES", 10_000)
    tables = Tables()
    for i in range(100):  # each attribute row about 1 kB of text: a few kept, the rest counted
        tables.batch({"mpid": 1, "user_attributes": {f"a{i}": ["{}"] * 200}}, "x.jsonl")
    assert 0 < tables.count("attributes") < 100
    assert tables.count("attributes") + tables.left_out["attributes"] == 100
    assert tables.kept_bytes <= 10_000
    assert [r["name"] for r in tables.table("attributes")][:2] == ["a0", "a1"]


def test_rows_past_the_byte_bound_are_counted_in_the_files_and_the_result(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portable, "MAX_BYTES", 300)
    sandbox.seed_profile({"email": "jane@example.com"}, batches=[
        {"events": [], "user_attributes": {f"attribute{i}": "v" * 40 for i in range(20)}}])
    _, result = _portability(sandbox, hostile, tmp_path)
    assert result.status == "completed", result.message
    [doc] = [Path(f.path) for f in result.files if f.path.endswith("-portable.json")]
    left = json.loads(doc.read_text())["rows_not_kept"]
    assert left["attributes"] > 0 and result.summary["portable"]["rows"]["attributes_not_kept"] == left["attributes"]


def test_the_portable_json_keeps_each_batch_and_event_whole(sandbox: Sandbox, hostile: HostileServer,
                                                           tmp_path: Path) -> None:
    event = {"event_type": "commerce_event", "data": {"product_action": {"action": "purchase", "products": [
        {"id": "sku-1", "price": 9.99}]}, "timestamp_unixtime_ms": 1764400000000}}
    sandbox.seed_profile({"email": "jane@example.com"}, batches=[{
        "events": [event, {"event_type": "screen_view", "data": {"screen_name": "Checkout"}}],
        "device_info": {"platform": "iOS", "device_model": "iPhone15,2"}, "ip": "203.0.113.9"}])
    _, result = _portability(sandbox, hostile, tmp_path)
    assert result.status == "completed", result.message
    [doc] = [Path(f.path) for f in result.files if f.path.endswith("-portable.json")]
    text = doc.read_text()
    document = json.loads(text)
    [batch] = [b for b in document["batches"] if b["events"]]
    assert batch["batch"]["ip"] == "203.0.113.9" and batch["batch"]["device_info"]["device_model"] == "iPhone15,2"
    whole = [e["event"] for e in batch["events"]]
    assert whole[0]["data"]["product_action"]["products"][0]["price"] == 9.99
    assert whole[1]["data"]["screen_name"] == "Checkout"
    assert all("exact values" not in f.description for f in result.files)
    assert document["rows_not_kept"] == {"identities": 0, "attributes": 0, "consent": 0, "audiences": 0}
    assert not [k for k in result.summary["portable"]["rows"] if k.endswith("_not_kept")]


EMAIL, CID, PHONE = "jane.doe@example.com", "C-4242", "+1 555 0100 123"


def _request(request_id: str) -> DsrRequest:
    return DsrRequest(request_id=request_id, type="deletion",
                      identities={"email": EMAIL, "customer_id": CID, "phone": PHONE},
                      submitted_at=datetime(2026, 1, 1, tzinfo=UTC), regulation="gdpr")


def _result() -> Result:
    at = datetime(2026, 1, 1, 1, tzinfo=UTC)
    return Result("E-1", "deletion", "failed", f"refused: Invalid identity value {EMAIL.upper()} for customer c-4242",
                  audit=(AuditEvent("submit", f"mParticle said: no user 15550100123 ({EMAIL})", at=at),),
                  summary={"partners": [{"domain": "braze.com", "name": "Braze", "status": "failed",
                                         "status_message": f"no user with external_id {CID} (email {EMAIL})"}]})


@pytest.mark.parametrize("request_id", ["jane.doe_at_example.com", "erase-jane.doe", "JANE.DOE-EXAMPLE.COM",
                                        "c4242-erasure", "ticket-15550100123"])
def test_a_request_id_holding_an_identifier_in_another_spelling_is_shown_as_its_digest(request_id: str) -> None:
    record = evidence_record(_request(request_id), _result())
    assert record["request"]["request_id"].startswith("sha256:")


def test_the_evidence_record_copies_no_identifier_from_remote_text(tmp_path: Path) -> None:
    record = evidence_record(_request("E-1"), _result())
    text = json.dumps(record, ensure_ascii=False).lower()
    for value in ("jane.doe", "example.com", "4242", "15550100123", "555 0100"):
        assert value not in text, value
    assert record["request"]["request_id"] == "E-1"
    assert record["partners"] == [{"domain": "braze.com", "name": "Braze", "status": "failed"}]
    assert "[withheld]" in record["outcome"]["message"]


def test_the_evidence_writer_checks_its_final_bytes(tmp_path: Path) -> None:
    secret = CREDS.workspace_secret
    result = Result("E-1", "deletion", "failed", "x", audit=(
        AuditEvent("submit", f"answer held {secret}", at=datetime(2026, 1, 1, tzinfo=UTC)),))
    with pytest.raises(UnsafeResponseError):
        write_evidence(str(tmp_path), _request("E-1"), result, Redactor([secret]))
    assert list(tmp_path.iterdir()) == []

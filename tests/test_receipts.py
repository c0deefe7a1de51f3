"""Signed receipts (OpenDSR controller self-certification): mParticle's acknowledgement of every request is
verified with the processor certificate and kept as evidence; ``signatures: strict`` stops at a bad one."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.hashes import SHA256

from connector_mparticle.api.receipts import withhold_encoded_request
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import CertificateAuthority
from dsr_framework import Result
from tests.support.hosting import drive, mparticle, request

JANE = {"email": "jane@example.com", "customer_id": "c-42"}


def receipt_events(result: Result) -> list[dict[str, Any]]:
    return [e.detail["receipt"] for e in result.audit if e.action == "receipt"]


def dsr_calls(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [(e["method"], e["path"]) for e in sandbox.request_log(api="dsr") if "/requests" in e["path"]]


def _base64_forms(text: str) -> set[str]:
    """The base64 of ``text`` at each alignment inside a longer string (what encoded_request would carry)."""
    forms = set()
    for pad in range(3):
        encoded = base64.b64encode(b"x" * pad + text.encode()).decode()
        forms.add(encoded[4 * ((pad + 2) // 3):][:12])
    return forms


@pytest.mark.parametrize("kind", ["access", "deletion"])
def test_a_completed_request_carries_a_verified_receipt_in_its_trail_summary_and_file(
        sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    sandbox.seed_profile(dict(JANE))
    result, _ = drive(mparticle(sandbox), request(kind, output_dir=str(tmp_path)))
    assert result.status == "completed", result.message
    (summary_receipt,) = result.summary["receipts"]
    assert summary_receipt["verified"] is True and summary_receipt["kind"] == "acknowledgement"
    assert summary_receipt["subject_request_id"] == result.summary["subject_request_id"]
    assert summary_receipt["certificate"]["sha256"] == sandbox.pki.processor.certificate.fingerprint(SHA256()).hex()
    assert summary_receipt["certificate"]["subject"].startswith("CN=opendsr.mparticle.com")
    assert summary_receipt["encoded_request_matches"] is True  # mParticle echoed exactly what was sent
    # In the audit trail: at submission and again at the end (a long poll cannot push it out).
    submitted = [e for e in result.audit if e.action.startswith("submit") and "receipt" in e.detail]
    assert submitted and submitted[0].detail["receipt"]["verified"] is True and "signed by" in submitted[0].outcome
    assert receipt_events(result) == [summary_receipt]
    (receipt_file,) = [Path(f.path) for f in result.files if f.path.endswith("-receipt.json")]
    written = json.loads(receipt_file.read_text())
    assert written["receipts"] == [summary_receipt] and written["request"]["request_id"] == "host-req-1"


def test_the_receipt_withholds_encoded_request_and_no_identity_leaks(sandbox: Sandbox, tmp_path: Path) -> None:
    """The spec says controllers MUST NOT store encoded_request (7.3): it is the whole request, identities and
    all. The receipt keeps the body with that value replaced by its hash, and nothing else changes."""
    result, _ = drive(mparticle(sandbox), request("deletion", output_dir=str(tmp_path), **{"customer_id": "c-42"}))
    (receipt,) = result.summary["receipts"]
    assert '"encoded_request": "<withheld sha256:' in receipt["body"]
    everything = json.dumps(result.to_dict()) + "".join(p.read_text() for p in tmp_path.iterdir())
    for value in ("jane@example.com", "c-42"):
        assert not any(form in everything for form in _base64_forms(value)), value
    assert "jane@example.com" not in everything


def test_withholding_keeps_every_other_byte() -> None:
    raw = b'{"a":1, "encoded_request" : "eyJ4IjoiXCJ5In0=", "b":"\\u00e9\\"q"}'
    text = withhold_encoded_request(raw)
    digest = hashlib.sha256(b"eyJ4IjoiXCJ5In0=").hexdigest()
    assert text == f'{{"a":1, "encoded_request" : "<withheld sha256:{digest}>", "b":"\\u00e9\\"q"}}'


@pytest.mark.parametrize("signature", ["invalid", "missing"])
def test_strict_fails_a_request_whose_acknowledgement_is_forged_or_unsigned(sandbox: Sandbox,
                                                                          signature: str) -> None:
    sandbox.seed_profile(dict(JANE))
    sandbox.set_faults(dsr={"signature": signature})
    result = mparticle(sandbox, signatures="strict").handle(request("access"))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "rejected"
    subject_request_id = result.summary["subject_request_id"]
    assert f"mParticle may still process request {subject_request_id}" in result.message
    assert ("bad_signature" if signature == "invalid" else "missing_headers") in result.message
    assert result.state is None and result.next_check_at is None
    assert dsr_calls(sandbox) == [("POST", "/v3/requests")]  # nothing further sent


@pytest.mark.parametrize(("signature", "reason"), [("invalid", "bad_signature"), ("missing", "missing_headers")])
def test_record_carries_on_and_marks_the_receipt_unverified(sandbox: Sandbox, tmp_path: Path, signature: str,
                                                             reason: str) -> None:
    sandbox.seed_profile(dict(JANE))
    sandbox.set_faults(dsr={"signature": signature})
    handle = mparticle(sandbox)  # signatures: record is the default
    jane = request("deletion", output_dir=str(tmp_path), customer_id="c-42")
    first = handle.handle(jane)
    assert first.status == "pending" and "acknowledgement of request" in first.message and reason in first.message
    result, _ = drive(handle, jane, state=first.state)
    assert result.status == "completed" and result.summary["verified"] is True
    (receipt,) = result.summary["receipts"]
    assert receipt["verified"] is False and receipt["reason"] == reason and receipt["certificate"] is None
    assert f"is not verified ({reason}" in result.message
    assert receipt_events(result) == [receipt]


def test_strict_refuses_a_certificate_from_an_untrusted_ca(sandbox: Sandbox, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(CertificateAuthority("not mParticle's CA").cert_pem)
    result = mparticle(sandbox, signatures="strict", signature_trust_store=str(other)).handle(request("access"))
    assert result.status == "failed" and "certificate_untrusted" in result.message


def test_strict_stops_at_a_status_answer_with_a_bad_signature(sandbox: Sandbox) -> None:
    handle = mparticle(sandbox, signatures="strict")
    first = handle.handle(request("deletion"))
    assert first.status == "pending" and first.summary["receipts"][0]["verified"] is True
    sandbox.set_faults(dsr={"signature": "invalid"})
    second = handle.handle(request("deletion"), first.state)
    assert second.status == "failed" and "bad_signature" in second.message


def test_a_status_answer_that_is_merely_unsigned_is_fine(sandbox: Sandbox) -> None:
    """mParticle documents the signature on the 201 only; an unsigned status answer is not a failure."""
    handle = mparticle(sandbox, signatures="strict")
    first = handle.handle(request("deletion"))
    sandbox.set_faults(dsr={"signature": "missing"})
    result, _ = drive(handle, request("deletion"), state=first.state)
    assert result.status == "completed" and result.summary["receipts"][0]["verified"] is True


def test_a_resumed_submission_takes_a_signed_status_answer_as_its_receipt(sandbox: Sandbox) -> None:
    """The acknowledgement is lost with the state (a crash after submitting): mParticle's signed status answer
    for the same request stands in for it, so strict mode can still finish the request."""
    handle = mparticle(sandbox, signatures="strict")
    handle.handle(request("deletion"))
    result, _ = drive(handle, request("deletion"))  # no state: "already exists", then the status
    assert result.status == "completed", result.message
    (receipt,) = result.summary["receipts"]
    assert receipt["kind"] == "status" and receipt["verified"] is True and receipt["http_status"] == 200
    assert len(sandbox.dsrs()) == 1


def test_strict_without_any_signed_answer_for_a_resumed_submission_fails(sandbox: Sandbox) -> None:
    handle = mparticle(sandbox, signatures="strict")
    handle.handle(request("deletion"))
    sandbox.set_faults(dsr={"signature": "missing"})
    result = handle.handle(request("deletion"))  # no state, and nothing mParticle says is signed
    assert result.status == "failed" and "no signed answer" in result.message


def test_an_unreachable_certificate_is_tried_once_per_minute_not_per_call() -> None:
    with Sandbox() as sandbox:  # its own: a connector already holding the certificate would not fetch it
        handle = mparticle(sandbox)
        sandbox.set_faults(results={"error_rate": 1.0})  # the sandbox serves its certificate like a static file
        for number in range(3):
            result = handle.handle(request("deletion", request_id=f"r-{number}", email=f"user{number}@example.com"))
            assert result.status == "pending" and "certificate_unavailable" in result.message, result.message
        fetches = [e for e in sandbox.request_log() if e["path"] == "/dsr/opendsr_cert.pem"]
        assert len(fetches) == 1


@pytest.mark.parametrize(("changed", "later_request"), [
    ({"erasure": {"skip_waiting_period": "never"}}, None),
    ({"erasure": {"skip_waiting_period": "when_at_risk"}, "callback_urls": ["https://host.example.com/cb"]}, None),
    ({"erasure": {"skip_waiting_period": "when_at_risk"}, "regulation": "ccpa"}, None),
    # the host's copy, at second precision (another timeout only so that a new connector fetches the certificate:
    # the first one waits a minute before trying again)
    ({"erasure": {"skip_waiting_period": "when_at_risk"}, "timeouts": {"total_seconds": 61}}, "second"),
], ids=["policy", "callback_urls", "regulation", "submitted_at"])
def test_an_acknowledgement_verified_later_is_checked_against_the_bytes_sent_whatever_changed_since(
        changed: dict[str, Any], later_request: str | None) -> None:
    """What a submission takes from outside the identities is kept with it when it is first sent: an
    acknowledgement whose certificate could not be fetched then is verified on a later call against the bytes
    sent, even after the policy, the callback URLs or the configured regulation changed, or the host hands back
    its copy of the request with its time cut to the second."""
    asked = datetime.now(UTC).replace(microsecond=123_000)
    due_soon = replace(request("deletion", **{"customer_id": JANE["customer_id"]}), submitted_at=asked,
                       due_at=datetime.now(UTC) + timedelta(days=1))
    again = replace(due_soon, submitted_at=asked.replace(microsecond=0)) if later_request else due_soon
    with Sandbox() as sandbox:  # its own: a connector already holding the certificate would not fetch it
        sandbox.seed_profile(dict(JANE))
        sandbox.set_durations(erasure=(600, 600))
        sandbox.set_faults(results={"error_rate": 1.0})  # the certificate cannot be fetched
        strict = {"signatures": "strict"}
        first = mparticle(sandbox, erasure={"skip_waiting_period": "when_at_risk"}, **strict).handle(due_soon)
        assert first.status == "pending" and "certificate_unavailable" in first.message, first.message
        [dsr] = sandbox.dsrs()
        assert dsr["extensions_sent"]["opendsr.mparticle.com"]["skip_waiting_period"] is True
        sandbox.clear_faults()
        later = mparticle(sandbox, **{**changed, **strict}).handle(again, first.state)
    assert later.status == "pending", later.message
    assert [r["verified"] for r in later.summary["receipts"]] == [True], later.summary["receipts"]

"""Status callbacks: a real, signed callback passes; every kind of forgery is refused with its own reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector_mparticle.callbacks import CallbackRejected, CallbackVerifier
from connector_mparticle.sandbox import Durations, Sandbox
from connector_mparticle.sandbox.pki import (
    PROCESSOR_DOMAIN,
    CertificateAuthority,
    SandboxPKI,
    default_pki,
    self_signed,
    sign_body,
)
from tests.support.hosting import mparticle, request
from tests.support.receiver import callback_receiver


def verifier_for(sb: Sandbox, ca_pem: bytes | None = None) -> CallbackVerifier:
    return CallbackVerifier(f"{sb.url}/v3/discovery", trust_store=ca_pem or default_pki().ca.cert_pem)


def signed(sb: Sandbox, body: dict[str, Any], key: Any = None) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    return ({"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
             "X-OpenDSR-Signature": sign_body(key or sb.pki.processor.key, raw)}, raw)


STATUS = {"controller_id": "12345", "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00",
          "request_status": "completed", "expected_completion_time": None, "results_url": None, "extensions": []}


def test_a_real_callback_from_the_sandbox_verifies_and_replaces_polling(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"})
    sandbox.set_durations(erasure=(0.2, 0.3))
    with callback_receiver() as (url, received):
        handle = mparticle(sandbox, callback_urls=[url], polling={"min_interval_seconds": 3600,
                                                                  "max_interval_seconds": 86400})
        pending = handle.handle(request("deletion", customer_id="c-1"))
        assert pending.status == "pending" and pending.next_check_at is not None
        assert pending.next_check_at > datetime.now(UTC) + timedelta(minutes=30)  # polling would wait an hour
        deadline = time.time() + 5
        verifier = verifier_for(sandbox)
        completed = None
        while completed is None and time.time() < deadline:
            for headers, body in list(received):
                status = verifier.verify(headers, body)
                if status.request_status == "completed":
                    completed = status
            time.sleep(0.05)
    assert completed is not None and completed.applies_to(pending.state)
    done = handle.handle(request("deletion", customer_id="c-1"), pending.state)  # now, not in an hour
    assert done.status == "completed" and done.summary["verified"] is True


def test_the_certificate_is_fetched_once_and_cached(sandbox: Sandbox) -> None:
    verifier = verifier_for(sandbox)
    for _ in range(3):
        assert verifier.verify(*signed(sandbox, STATUS)).request_status == "completed"
    assert verifier.fetches == 1
    assert len([e for e in sandbox.request_log() if e["path"] == "/dsr/opendsr_cert.pem"]) == 1


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda sb, h, b: ({**h, "X-OpenDSR-Signature": sign_body(CertificateAuthority("forger").issued.key, b)}, b),
     "bad_signature"),
    (lambda sb, h, b: (h, b.replace(b"completed", b"cancelled")), "bad_signature"),
    (lambda sb, h, b: ({**h, "X-OpenDSR-Signature": "!!not base64!!"}, b), "bad_signature"),
    (lambda sb, h, b: ({**h, "X-OpenDSR-Processor-Domain": "opendsr.evil.example"}, b), "domain_not_allowed"),
    (lambda sb, h, b: ({"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN}, b), "missing_headers"),
    (lambda sb, h, b: ({}, b), "missing_headers"),
], ids=["forged-signature", "tampered-body", "garbled-signature", "wrong-domain", "no-signature", "no-headers"])
def test_forged_or_tampered_callbacks_are_refused(sandbox: Sandbox, tamper: Any, reason: str) -> None:
    headers, body = tamper(sandbox, *signed(sandbox, STATUS))
    with pytest.raises(CallbackRejected) as caught:
        verifier_for(sandbox).verify(headers, body)
    assert caught.value.reason == reason and caught.value.http_status == 401


def test_a_signed_body_that_is_not_a_status_is_a_400(sandbox: Sandbox) -> None:
    headers, body = signed(sandbox, {"hello": "world"})
    with pytest.raises(CallbackRejected) as caught:
        verifier_for(sandbox).verify(headers, body)
    assert caught.value.reason == "invalid_body" and caught.value.http_status == 400


def _pki_with(processor: Any) -> SandboxPKI:
    base = default_pki()
    return SandboxPKI(base.ca, processor, base.tls)


@pytest.mark.parametrize(("processor", "reason"), [
    (lambda: default_pki().ca.issue([PROCESSOR_DOMAIN], not_before=datetime.now(UTC) - timedelta(days=400),
                                    valid_days=30), "certificate_expired"),
    (lambda: CertificateAuthority("another CA").issue([PROCESSOR_DOMAIN]), "certificate_untrusted"),
    (lambda: self_signed(PROCESSOR_DOMAIN), "certificate_self_signed"),
    (lambda: default_pki().ca.issue(["opendsr.evil.example"]), "certificate_name_mismatch"),
], ids=["expired", "other-ca", "self-signed", "wrong-name"])
def test_bad_processor_certificates_are_refused_with_distinct_reasons(processor: Any, reason: str) -> None:
    with Sandbox(pki=_pki_with(processor())) as sb, pytest.raises(CallbackRejected) as caught:
        verifier_for(sb).verify(*signed(sb, STATUS))
    assert caught.value.reason == reason


def test_a_certificate_url_on_an_untrusted_host_is_not_fetched(sandbox: Sandbox) -> None:
    verifier = verifier_for(sandbox)
    verifier.certificate_hosts = {"static.mparticle.com"}  # the sandbox host is no longer trusted
    with pytest.raises(CallbackRejected) as caught:
        verifier.verify(*signed(sandbox, STATUS))
    assert caught.value.reason == "certificate_unavailable"
    assert not [e for e in sandbox.request_log() if e["path"] == "/dsr/opendsr_cert.pem"]


def test_the_verifier_trusts_the_configured_store_over_https() -> None:
    with Sandbox(https=True, durations={"access": Durations(1, 1), "erasure": Durations(1, 1)}) as sb:
        verifier = CallbackVerifier.for_config(sb.connector_config())
        assert verifier.verify(*signed(sb, STATUS)).subject_request_id == STATUS["subject_request_id"]

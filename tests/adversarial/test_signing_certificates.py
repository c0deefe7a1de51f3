"""Class 13: a processor certificate signs evidence only if it is issued for signatures with a strong key.

OpenDSR's security guidelines ("Callback validation" 2.f) require the certificate to carry the digital signature
usage; the connector also requires RSA of at least 2048 bits or EC of at least 256, for the leaf and every
intermediate it is verified through. Each non-conforming certificate below is issued by the sandbox's own CA
(so it chains and is otherwise valid) and refused with its own reason, both for a callback and for the signed
acknowledgement of a real request; conforming RSA-3072 and EC P-256/P-384 certificates (ECDSA signatures, FIPS
186-4 as OpenDSR section 4.2 names it) are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from connector_mparticle.callbacks import CallbackRejected, CallbackVerifier
from connector_mparticle.sandbox import Durations, Sandbox
from connector_mparticle.sandbox.pki import (
    PROCESSOR_DOMAIN,
    CertificateAuthority,
    Issued,
    SandboxPKI,
    default_pki,
    ec_key,
    rsa_key,
    sign_body,
    usage,
)
from tests.support.hosting import mparticle, request

FAST = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
STATUS = {"controller_id": "12345", "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00",
          "request_status": "completed", "expected_completion_time": None, "results_url": None, "extensions": None}


def issued_by_sandbox_ca(**options: object) -> Callable[[], Issued]:
    def issue() -> Issued:
        issuer = default_pki().issuer
        assert issuer is not None
        return issuer.issue([PROCESSOR_DOMAIN], **options)  # type: ignore[arg-type]
    return issue


def through_weak_intermediate() -> Issued:
    return default_pki().ca.intermediate("weak issuing CA", key=rsa_key(1024)).issue([PROCESSOR_DOMAIN])


REFUSED = {
    "no-key-usage": (issued_by_sandbox_ca(key_usage=None), "certificate_key_usage"),
    "key-encipherment-only": (issued_by_sandbox_ca(key_usage=usage("key_encipherment")), "certificate_key_usage"),
    "certificate-signing-only": (issued_by_sandbox_ca(key_usage=usage("key_cert_sign")), "certificate_key_usage"),
    "rsa-1024": (issued_by_sandbox_ca(key=rsa_key(1024)), "certificate_weak_key"),
    "ec-p192": (issued_by_sandbox_ca(key=ec_key(ec.SECP192R1())), "certificate_weak_key"),
    "ec-p224": (issued_by_sandbox_ca(key=ec_key(ec.SECP224R1())), "certificate_weak_key"),
    # cryptography's chain builder already refuses an RSA-1024 CA ("RSA key is too weak"); the connector's own
    # check of the intermediates (certificate_weak_key) stands behind it.
    "weak-intermediate": (through_weak_intermediate, ("certificate_untrusted", "certificate_weak_key")),
}
ACCEPTED = {
    "rsa-3072": issued_by_sandbox_ca(key=rsa_key(3072)),
    "ec-p256": issued_by_sandbox_ca(key=ec_key(), key_usage=usage("digital_signature")),
    "ec-p384": issued_by_sandbox_ca(key=ec_key(ec.SECP384R1()), key_usage=usage("digital_signature")),
    "digital-signature-only": issued_by_sandbox_ca(key_usage=usage("digital_signature")),
}


def serving(leaf: Issued) -> SandboxPKI:
    base = default_pki()
    return SandboxPKI(base.ca, leaf, base.tls, base.issuer)


def signed(sb: Sandbox) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(STATUS).encode()
    return ({"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
             "X-OpenDSR-Signature": sign_body(sb.pki.processor.key, raw)}, raw)


def reasons(expected: str | tuple[str, ...]) -> tuple[str, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_callback_signed_with_a_non_conforming_certificate_is_refused(case: str) -> None:
    make, expected = REFUSED[case]
    with Sandbox(pki=serving(make()), durations=FAST) as sb:
        verifier = CallbackVerifier(f"{sb.url}/v3/discovery", trust_store=sb.pki.ca.cert_pem)
        with pytest.raises(CallbackRejected) as caught:
            verifier.verify(*signed(sb))
    assert caught.value.reason in reasons(expected) and caught.value.http_status == 401
    assert caught.value.message  # a reason a person can read, e.g. "an RSA key of 1024 bits"


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_a_callback_signed_with_a_conforming_certificate_is_accepted(case: str) -> None:
    with Sandbox(pki=serving(ACCEPTED[case]()), durations=FAST) as sb:
        verifier = CallbackVerifier(f"{sb.url}/v3/discovery", trust_store=sb.pki.ca.cert_pem)
        assert verifier.verify(*signed(sb)).request_status == "completed"


@pytest.mark.parametrize("case", ["no-key-usage", "rsa-1024", "ec-p224"])
def test_a_receipt_signed_with_a_non_conforming_certificate_is_not_verified(case: str) -> None:
    make, expected = REFUSED[case]
    with Sandbox(pki=serving(make()), durations=FAST) as sb:
        recorded = mparticle(sb).handle(request("deletion"))
        assert recorded.status == "pending"
        (receipt,) = recorded.summary["receipts"]
        assert receipt["verified"] is False and receipt["reason"] in reasons(expected)
        strict = mparticle(sb, signatures="strict").handle(request("deletion", request_id="host-req-strict",
                                                                   email="strict@example.com"))
    assert strict.status == "failed" and strict.error is not None and strict.error.error_class == "rejected"
    assert any(reason in strict.message for reason in reasons(expected))


def test_an_ecdsa_signed_receipt_verifies() -> None:
    with Sandbox(pki=serving(ACCEPTED["ec-p256"]()), durations=FAST) as sb:
        result = mparticle(sb, signatures="strict").handle(request("deletion"))
    assert result.status == "pending", result.message
    (receipt,) = result.summary["receipts"]
    assert receipt["verified"] is True


def test_the_sandbox_pki_issues_conforming_certificates() -> None:
    from cryptography import x509

    pki = default_pki()
    for leaf in (pki.processor, pki.tls):
        usage_ = leaf.certificate.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage_.critical and usage_.value.digital_signature
        assert leaf.certificate.public_key().key_size >= 2048  # type: ignore[union-attr]
    weak = CertificateAuthority("tests only").issue([PROCESSOR_DOMAIN], key_usage=None, key=rsa_key(1024))
    assert weak.certificate.public_key().key_size == 1024  # type: ignore[union-attr]

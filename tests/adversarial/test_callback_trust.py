"""Class 9: callbacks are trusted only through a full chain to the signature trust anchors, and a callback
(even a genuine, replayed one) never changes a request's status by itself.

A public CA issues leaves from an intermediate, so the verifier must use the intermediates served with the
processor certificate; the anchors for signatures are kept apart from the HTTPS trust store.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from connector_mparticle.callbacks import CallbackRejected, CallbackVerifier
from connector_mparticle.sandbox import Durations, Sandbox
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, CertificateAuthority, SandboxPKI, default_pki, sign_body
from tests.adversarial.conftest import CREDS, config_for, handle_for
from tests.adversarial.hostile import HostileServer
from tests.support.hosting import request

FAST = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
STATUS = {"controller_id": "12345", "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00",
          "request_status": "completed", "expected_completion_time": None, "results_url": None, "extensions": None}


def signed(sb: Sandbox, body: dict[str, object]) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    return ({"X-OpenDSR-Processor-Domain": PROCESSOR_DOMAIN,
             "X-OpenDSR-Signature": sign_body(sb.pki.processor.key, raw)}, raw)


def pki_serving(processor_chain: str) -> SandboxPKI:
    base = default_pki()
    assert base.issuer is not None
    leaf = base.issuer.issue([PROCESSOR_DOMAIN])
    if processor_chain == "leaf-only":
        leaf = dataclasses.replace(leaf, chain=())
    elif processor_chain == "foreign-intermediate":
        stranger = CertificateAuthority("another root").intermediate("another issuing CA")
        leaf = dataclasses.replace(leaf, chain=(stranger.issued.certificate,))
    elif processor_chain == "with-root":
        leaf = dataclasses.replace(leaf, chain=(*leaf.chain, base.ca.issued.certificate))
    return SandboxPKI(base.ca, leaf, base.tls, base.issuer)


@pytest.mark.parametrize(("chain", "accepted"), [("full", True), ("with-root", True), ("leaf-only", False),
                                                 ("foreign-intermediate", False)])
def test_the_processor_certificate_must_chain_through_the_intermediates_served_with_it(chain: str,
                                                                                      accepted: bool) -> None:
    with Sandbox(pki=pki_serving(chain), durations=FAST) as sb:
        verifier = CallbackVerifier(f"{sb.url}/v3/discovery", trust_store=sb.pki.ca.cert_pem)
        if accepted:
            assert verifier.verify(*signed(sb, STATUS)).request_status == "completed"
        else:
            with pytest.raises(CallbackRejected) as caught:
                verifier.verify(*signed(sb, STATUS))
            assert caught.value.reason == "certificate_untrusted"


def test_signature_anchors_are_separate_from_the_https_trust_store(tmp_path: Path) -> None:
    """HTTPS to the sandbox trusts its CA (trust_store); signatures are judged against signature_trust_store
    alone, so trusting a CA for HTTPS (a proxy's, say) never makes its certificates valid signers."""
    other = tmp_path / "other-ca.pem"
    other.write_bytes(CertificateAuthority("unrelated CA").cert_pem)
    with Sandbox(https=True, durations=FAST, credentials=CREDS) as sb:
        config = sb.connector_config()
        assert config["trust_store"] == config["signature_trust_store"] == sb.ca_file
        assert CallbackVerifier.for_config(config).verify(*signed(sb, STATUS)).request_status == "completed"
        with pytest.raises(CallbackRejected) as caught:
            CallbackVerifier.for_config({**config, "signature_trust_store": str(other)}).verify(*signed(sb, STATUS))
        assert caught.value.reason == "certificate_untrusted"
        only_signatures = {k: v for k, v in config.items() if k != "trust_store"}  # HTTPS trusts certifi only
        with pytest.raises(CallbackRejected) as caught:
            CallbackVerifier.for_config(only_signatures).verify(*signed(sb, STATUS))
        assert caught.value.reason == "certificate_unavailable"


def test_a_replayed_genuine_callback_changes_nothing(sandbox: Sandbox, hostile: HostileServer) -> None:
    """A callback only says "check now": replaying mParticle's own "completed" for a request that is still
    pending does not complete it, because the status always comes from the API."""
    handle = handle_for(config_for(hostile, sandbox))
    pending = handle.handle(request("deletion"))
    sandbox.force_status(pending.summary["subject_request_id"], "pending")
    replay = {**STATUS, "subject_request_id": pending.summary["subject_request_id"]}
    verifier = CallbackVerifier(f"{sandbox.url}/v3/discovery", trust_store=sandbox.pki.ca.cert_pem)
    for _ in range(2):  # the verifier itself keeps no memory: replays verify, and that is harmless
        status = verifier.verify(*signed(sandbox, replay))
        assert status.applies_to(pending.state)
    after = handle.handle(request("deletion"), pending.state)
    assert after.status == "pending"  # the API said pending, so it is pending
    assert hostile.requests(r"^/v3/requests/[0-9a-f-]{36}$")  # and it was asked


def test_a_callback_for_another_request_does_not_apply(sandbox: Sandbox, hostile: HostileServer) -> None:
    pending = handle_for(config_for(hostile, sandbox)).handle(request("deletion"))
    verifier = CallbackVerifier(f"{sandbox.url}/v3/discovery", trust_store=sandbox.pki.ca.cert_pem)
    assert not verifier.verify(*signed(sandbox, STATUS)).applies_to(pending.state)
    assert not verifier.verify(*signed(sandbox, STATUS)).applies_to(None)

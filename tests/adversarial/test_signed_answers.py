"""A hostile server or proxy against signed receipts: it must not obtain a "verified" receipt for something
mParticle did not sign for this request, get past ``signatures: strict``, poison the certificate cache, or make
the connector store identities or secrets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import connector_mparticle.api.signatures as signatures_module
from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for, leaks
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import drive, request

ALREADY_EXISTS = {"code": 400, "message": "Subject request already exists.",
                  "errors": [{"domain": "Validation", "reason": "InvalidOperationException",
                              "message": "Subject request already exists."}]}


def status_gets(hostile: HostileServer) -> list[Seen]:
    return [s for s in hostile.requests(r"^/v3/requests/") if s.method == "GET"]


@pytest.mark.parametrize("mode", ["record", "strict"])
def test_a_proxy_that_changes_the_request_cannot_pass_off_mparticles_genuine_answer(
        sandbox: Sandbox, hostile: HostileServer, mode: str) -> None:
    """mParticle signs its 201 for whatever reached it; the receipt binds the signature to the request the
    connector sent through encoded_request."""
    def rewrite(seen: Seen, forward: Any) -> Answer:
        body = json.loads(seen.body)
        body["subject_identities"] = {"email": {"value": "someone-else@example.com", "encoding": "raw"}}
        seen.body = json.dumps(body).encode()
        return forward()

    hostile.on("POST", r"^/v3/requests$", rewrite)
    result = handle_for(config_for(hostile, sandbox, signatures=mode)).handle(request("deletion"))
    (receipt,) = result.summary["receipts"]
    assert receipt["verified"] is False and receipt["reason"] == "request_mismatch"
    assert receipt["certificate"] is not None  # the signature itself was mParticle's
    assert "request_mismatch" in result.message
    if mode == "strict":
        assert result.status == "failed" and result.error is not None and result.error.error_class == "rejected"
        assert status_gets(hostile) == []


def test_an_answer_for_another_workspace_is_not_a_receipt(sandbox: Sandbox, hostile: HostileServer) -> None:
    config = config_for(hostile, sandbox, signatures="strict")
    config["profile"]["workspace_id"] = 999  # the sandbox signs as its own workspace
    result = handle_for(config).handle(request("deletion"))
    assert result.status == "failed" and "other_workspace" in result.message


def _certificate_with_two_san_extensions(sandbox: Sandbox) -> bytes:
    der = bytearray(sandbox.pki.processor.certificate.public_bytes(Encoding.DER))
    basic_constraints = der.find(bytes.fromhex("0603551d13"))
    assert basic_constraints > 0
    der[basic_constraints:basic_constraints + 5] = bytes.fromhex("0603551d11")  # now a second SAN extension
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der)) + b"-----END CERTIFICATE-----\n"


def test_an_unreadable_certificate_is_refused_and_does_not_poison_the_cache(sandbox: Sandbox,
                                                                           hostile: HostileServer) -> None:
    junk = _certificate_with_two_san_extensions(sandbox)
    served = []

    def once(seen: Seen, forward: Any) -> Answer:
        served.append(seen.path)
        return Answer(200, {"Content-Type": "application/x-pem-file"}, junk) if len(served) <= 2 else forward()

    hostile.on("GET", r"^/dsr/opendsr_cert\.pem$", once)
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion", request_id="d-1", email="one@example.com"))
    assert first.status == "pending" and first.summary["receipts"][0]["reason"] == "certificate_invalid"
    second = handle.handle(request("deletion", request_id="d-2", email="two@example.com"))
    assert second.status == "pending" and second.summary["receipts"][0]["verified"] is True


def test_strict_waits_out_an_unreachable_certificate_and_verifies_the_receipt_later(
        sandbox: Sandbox, hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed certificate fetch is not a verdict: the request stays pending, nothing further is sent, and
    the acknowledgement is verified on a later call from its receipt and the request (encoded_request is
    never stored: it is rebuilt from the request and checked against the withheld value's hash)."""
    monkeypatch.setattr(signatures_module, "RETRY_FETCH_SECONDS", 0.0)
    answers = [Answer.of_json(503, {})]  # the first discovery fetch fails; later ones go through

    hostile.on("GET", r"^/v3/discovery", lambda seen, forward: answers.pop() if answers else forward())
    handle = handle_for(config_for(hostile, sandbox, signatures="strict"))
    first = handle.handle(request("deletion", customer_id="c-1"))
    assert first.status == "pending" and "could not be verified yet" in first.message
    assert first.summary["receipts"][0]["reason"] == "certificate_unavailable"
    (submission,) = [s for s in hostile.requests(r"^/v3/requests$") if s.method == "POST"]
    assert base64.b64encode(submission.body).decode()[:40] not in json.dumps(first.to_dict())
    assert status_gets(hostile) == []  # nothing further sent
    result, _ = drive(handle, request("deletion", customer_id="c-1"), state=first.state)
    assert result.status == "completed", result.message
    (receipt,) = result.summary["receipts"]
    assert receipt["verified"] is True and receipt["kind"] == "acknowledgement"
    assert receipt["encoded_request_matches"] is True
    assert any(e.action == "receipt" and e.outcome.startswith("verified again") for e in result.audit)


def test_a_state_written_under_record_does_not_get_past_strict(sandbox: Sandbox) -> None:
    config = sandbox.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 2})
    sandbox.set_faults(dsr={"signature": "missing"})
    first = handle_for(config).handle(request("deletion"))
    assert first.status == "pending" and first.summary["receipts"][0]["verified"] is False
    sandbox.clear_faults()
    later = handle_for({**config, "signatures": "strict"}).handle(request("deletion"), first.state)
    assert later.status == "failed" and "missing_headers" in later.message


def test_strict_submits_no_second_part_after_an_unverified_first(sandbox: Sandbox, hostile: HostileServer) -> None:
    """An mpid with an email is two OpenDSR requests. The first one's 201 is replaced by "already exists", so
    no signed answer for it is seen (status answers are unsigned here); under strict the second is not sent."""
    def exists(seen: Seen, forward: Any) -> Answer:
        if json.loads(seen.body).get("subject_identities"):
            forward()
            return Answer.of_json(400, ALREADY_EXISTS)
        return forward()

    hostile.on("POST", r"^/v3/requests$", exists)
    sandbox.set_faults(dsr={"signature": "missing"})
    result = handle_for(config_for(hostile, sandbox, signatures="strict")).handle(
        request("deletion", mpid="123456789"))
    assert result.status == "failed" and "no signed answer" in result.message
    assert len([s for s in hostile.requests(r"^/v3/requests$") if s.method == "POST"]) == 1
    assert len(sandbox.dsrs()) == 1


def test_a_body_whose_encoded_request_cannot_be_cut_out_is_not_kept(sandbox: Sandbox,
                                                                     hostile: HostileServer) -> None:
    """A key spelt with an escape (still "encoded_request" to a JSON parser) defeats a textual cut: the whole
    body is dropped rather than storing the identities it carries."""
    def escaped(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        return Answer(answer.status, answer.headers, answer.body.replace(b'"encoded_request"',
                                                                         b'"encoded\\u005frequest"'))

    hostile.on("POST", r"^/v3/requests$", escaped)
    result = handle_for(config_for(hostile, sandbox)).handle(request("deletion"))
    (receipt,) = result.summary["receipts"]
    assert receipt["body"] is None and receipt["reason"] == "bad_signature"
    sent = base64.b64encode(json.dumps(json.loads(hostile.requests(r"^/v3/requests$")[0].body)).encode()).decode()
    everything = json.dumps(result.to_dict()) + json.dumps(result.state)
    assert sent[:40] not in everything and "jane@example.com" not in everything


def test_a_secret_echoed_in_the_acknowledgement_is_kept_out_of_the_state(sandbox: Sandbox,
                                                                          hostile: HostileServer) -> None:
    def echo(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        return answer.with_json({**json.loads(answer.body), "debug": seen.headers.get("authorization", "")})

    hostile.on("POST", r"^/v3/requests$", echo)
    result = plugin.handle_deletion(config_for(hostile, sandbox), request("deletion"), None)  # below the host
    assert result.status == "pending"
    for where in (result.state, result.summary, [e.to_dict() for e in result.audit]):
        assert leaks(json.dumps(where)) == []


def test_an_acknowledgement_holding_part_of_a_credential_keeps_its_verdict_but_not_its_body(
        sandbox: Sandbox, hostile: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body is kept byte for byte only to verify it again later; one holding part of a credential is not
    kept, so if the certificate could not be fetched either, it can never be verified: under strict the
    request stops (rejected) instead of waiting for a check that cannot happen."""
    from tests.adversarial.conftest import CREDS

    monkeypatch.setattr(signatures_module, "RETRY_FETCH_SECONDS", 0.0)

    def echo(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        return answer.with_json({**json.loads(answer.body), "note": CREDS.workspace_secret[:-1]})

    hostile.on("POST", r"^/v3/requests$", echo)
    hostile.on("GET", r"^/v3/discovery", lambda seen, forward: Answer.of_json(503, {}))
    first = handle_for(config_for(hostile, sandbox, signatures="strict")).handle(request("deletion", customer_id="c-9"))
    assert first.status == "failed" and first.error is not None and first.error.error_class == "rejected"
    [receipt] = json.loads(json.dumps(first.to_dict()))["summary"]["receipts"]
    assert receipt["body"] is None and receipt["body_withheld"] and receipt["reason"] == "unverifiable"
    assert receipt["body_sha256"] and receipt["signature"]  # the evidence that does not hold the credential
    assert leaks(json.dumps(first.to_dict())) == []

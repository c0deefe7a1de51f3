"""Signed receipts: mParticle's acknowledgement of each OpenDSR request, verified and kept as evidence.

mParticle answers ``POST /requests`` with 201 and ``X-OpenDSR-Signature``, its RSA signature over the raw
body (``developers/dsr-api/v3``, "Example Success Response Body"; OpenDSR spec 7.3-7.4). Checked with the
processor certificate from ``/discovery`` (:class:`~connector_mparticle.api.signatures.ProcessorSignatures`,
the verifier callbacks use too), it shows that mParticle received this request at this time: a receipt.

**Verified** means all of: the signature checks out; the body's ``encoded_request`` decodes to exactly the
request the connector sent (so a proxy cannot change the request and pass mParticle's genuine answer back:
``request_mismatch``); and, when the workspace id is known (``dsr.workspace_id`` or ``profile.workspace_id``),
``controller_id`` is that workspace (``other_workspace``).

A receipt holds the answer's HTTP status, its body as text, the body's SHA-256 (of the exact bytes signed),
the signature, the processor domain, the signing certificate (SHA-256 fingerprint, subject, issuer, expiry)
and the outcome.

**What is withheld.** ``encoded_request`` is the base64 of the whole request, identities included; the spec
says controllers MUST NOT log or store it (7.3). The receipt keeps the body text with that value replaced by
``<withheld sha256:…>`` (the hash of the value as received) and every other byte as it was. A body in which
``encoded_request`` cannot be cut out exactly (an escaped key, another encoding), or over
:data:`MAX_KEPT_BODY`, is not kept at all (``body: null``).

**Later verification.** If the certificate could not be fetched (``certificate_unavailable``), the signed
bytes can be rebuilt on a later call without ever storing ``encoded_request``: the connector recomputes it
from the request it sends (deterministic), checks it against the withheld value's hash, and verifies again
(:func:`reverify`).

mParticle documents the signature only on the 201 (its status example carries none; the spec signs status
answers too, 8.3). A signed status answer is verified when it carries a signature; when the 201 was not
seen (a submission resumed after a lost answer), a verified status answer is the receipt instead
(``"kind": "status"``): it shows mParticle knows request X, not what it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from connector_mparticle.api.opendsr import Signable
from connector_mparticle.api.signatures import ProcessorSignatures, SignatureRejected
from connector_mparticle.http.answers import Malformed, headers_lowered, json_body
from dsr_framework.models import format_time, utcnow

__all__ = ["MAX_KEPT_BODY", "describe", "document", "has_signature", "receipt", "reverify",
           "withhold_encoded_request"]

MAX_KEPT_BODY = 16 * 1024  #: an acknowledgement is a few hundred bytes
#: Possessive (``*+``, ``++``): a value that never closes fails once, without backtracking through it.
_ENCODED_REQUEST = re.compile(rb'("encoded_request"\s*+:\s*+)"((?:[^"\\]++|\\.)*+)"')
_WITHHELD = re.compile(r'"<withheld sha256:([0-9a-f]{64})>"')


def has_signature(answer: Signable) -> bool:
    return any(k.lower() == "x-opendsr-signature" for k in answer.headers)


def withhold_encoded_request(raw: bytes) -> str | None:
    """The body as text with every ``encoded_request`` string value replaced by its SHA-256; None when that
    cannot be done exactly (the result must parse as JSON and hold no other ``encoded_request``)."""
    def withheld(match: re.Match[bytes]) -> bytes:
        return match.group(1) + b'"<withheld sha256:' + hashlib.sha256(match.group(2)).hexdigest().encode() + b'>"'

    if len(raw) > MAX_KEPT_BODY:
        return None
    try:
        text = _ENCODED_REQUEST.sub(withheld, raw).decode("utf-8")
        kept = json_body(text)
    except (Malformed, UnicodeDecodeError):
        return None
    if not all(_WITHHELD.fullmatch(json.dumps(v)) for v in _values(kept, "encoded_request")):
        return None
    return text


def _values(node: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in ``node``."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [x for v in node.values() for x in _values(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _values(v, key)]
    return []


def _echo(raw: bytes, sent: bytes | None) -> bool | None:
    """Does ``encoded_request`` decode to exactly the JSON sent? None when nothing was sent to compare."""
    if sent is None:
        return None
    try:
        body = json_body(raw)
        encoded = body.get("encoded_request") if isinstance(body, dict) else None
        return isinstance(encoded, str) and json_body(base64.b64decode(encoded, validate=True)) == json.loads(sent)
    except (Malformed, binascii.Error, ValueError):
        return False


def _controller(raw: bytes) -> str | None:
    try:
        body = json_body(raw)
    except Malformed:
        return None
    value = body.get("controller_id") if isinstance(body, dict) else None
    return str(value)[:128] if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def receipt(signatures: ProcessorSignatures, answer: Signable, *, subject_request_id: str, label: str,
            kind: str, sent: bytes | None = None, workspace_id: str | None = None) -> dict[str, Any]:
    """Verify ``answer`` (mParticle's 201, with ``sent`` the exact request bytes; or a status answer for
    ``kind="status"``) and return its receipt.

    Never raises for a bad answer: the receipt says ``"verified": false`` with the reason (a
    :class:`~connector_mparticle.api.signatures.SignatureRejected` reason, ``request_mismatch`` or
    ``other_workspace``), and the caller's setting decides."""
    lowered = headers_lowered(answer.headers)
    signature = "".join(lowered.get("x-opendsr-signature", "")[:16384].split())
    evidence: dict[str, Any] = {
        "kind": kind, "subject_request_id": subject_request_id, "label": label, "http_status": answer.status,
        "body": withhold_encoded_request(answer.raw), "body_sha256": hashlib.sha256(answer.raw).hexdigest(),
        "processor_domain": (lowered.get("x-opendsr-processor-domain") or "")[:256] or None,
        "signature": signature or None,
        "controller_id": _controller(answer.raw), "checked_at": format_time(utcnow())}
    if kind == "acknowledgement":
        evidence["encoded_request_matches"] = _echo(answer.raw, sent)
    try:
        signed = signatures.check(answer.headers, answer.raw)
    except SignatureRejected as refusal:
        return {**evidence, "verified": False, "reason": refusal.reason, "detail": refusal.message,
                "certificate": None}
    certificate = {"sha256": signed.certificate_sha256, "subject": signed.certificate_subject,
                   "issuer": signed.certificate_issuer, "not_after": signed.certificate_not_after}
    outcome: dict[str, Any] = {"verified": True, "reason": None, "detail": None}
    if kind == "acknowledgement" and evidence["encoded_request_matches"] is not True:
        outcome = {"verified": False, "reason": "request_mismatch", "detail": "the signature is mParticle's, but "
                   "its encoded_request is not the request the connector sent"}
    elif workspace_id is not None and evidence["controller_id"] != str(workspace_id):
        outcome = {"verified": False, "reason": "other_workspace", "detail": "the signature is mParticle's, but "
                   f"for controller {evidence['controller_id']}, not workspace {workspace_id}"}
    return {**evidence, **outcome, "certificate": certificate}


def reverify(signatures: ProcessorSignatures, evidence: Mapping[str, Any], sent: bytes,
             workspace_id: str | None = None) -> dict[str, Any]:
    """Verify an acknowledgement again from its receipt and the request bytes ``sent`` (recomputed by the
    caller): ``encoded_request`` is rebuilt from ``sent``, checked against the withheld value's hash and the
    body's hash, then everything is checked as on the first call. The receipt unchanged if it cannot be."""
    body, digest = evidence.get("body"), evidence.get("body_sha256")
    if not isinstance(body, str) or not isinstance(digest, str):
        return dict(evidence)
    encoded = base64.b64encode(sent)
    candidates = {hashlib.sha256(v).hexdigest(): v for v in (encoded, encoded.replace(b"/", b"\\/"))}
    raw = _WITHHELD.sub(lambda m: '"' + candidates.get(m.group(1), b"?").decode() + '"', body).encode()
    if hashlib.sha256(raw).hexdigest() != digest:
        return dict(evidence)
    headers = {"X-OpenDSR-Processor-Domain": str(evidence.get("processor_domain") or ""),
               "X-OpenDSR-Signature": str(evidence.get("signature") or "")}
    return receipt(signatures, Signable(int(evidence.get("http_status") or 201), raw, headers),
                   subject_request_id=str(evidence["subject_request_id"]), label=str(evidence["label"]),
                   kind="acknowledgement", sent=sent, workspace_id=workspace_id)


def describe(evidence: Mapping[str, Any]) -> str:
    """One line for an audit outcome or a message."""
    if evidence.get("verified"):
        return f"signed by {evidence['processor_domain']} (certificate {evidence['certificate']['sha256'][:16]}…)"
    return f"not verified ({evidence.get('reason')}: {evidence.get('detail')})"


def document(request_id: str, request_type: str, regulation: str, receipts: list[dict[str, Any]]) -> bytes:
    """The ``…-receipt.json`` file: the host request and one receipt per OpenDSR request."""
    content = {"request": {"request_id": request_id, "type": request_type, "regulation": regulation},
               "processor": "mParticle (OpenDSR v3)", "receipts": receipts, "written_at": format_time(utcnow())}
    return (json.dumps(content, indent=2, sort_keys=True) + "\n").encode()

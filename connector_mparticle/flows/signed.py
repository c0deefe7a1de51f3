"""What a request's flow does with mParticle's signatures (:mod:`connector_mparticle.api.receipts`): a receipt for
each acknowledgement, signed status answers, verification on a later call when the certificate could not be
fetched, and the ``signatures: strict`` gate.

Under ``strict`` nothing further is sent for a host request (no next part submitted, no status checked, no
results downloaded) until every OpenDSR request so far holds a verified receipt:

* verified: carry on;
* no receipt (the 201 was lost and the submission resumed): a signed status answer may stand in for it; an
  unsigned one fails the request;
* ``certificate_unavailable``: not a verdict; the request stays pending and is verified again next call;
* anything else (forged, unsigned, another request echoed, another workspace): fail as ``rejected``.

Under ``record`` the same checks run and their outcome is kept and said, and nothing stops.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector_mparticle.api.opendsr import DsrStatus, Signable
from connector_mparticle.api.receipts import describe, has_signature, receipt, reverify
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import RetryLaterError, UnsignedAnswerError
from connector_mparticle.flows.state import Part
from dsr_framework.redact import Redactor

__all__ = ["BODY_WITHHELD", "NotYetVerified", "SignedAnswers"]

#: Why a receipt keeps no body although the answer had one.
BODY_WITHHELD = "the answer held part of one of the connector's credentials"

Note = Callable[..., None]


class NotYetVerified(RetryLaterError):
    """Under ``strict``: an answer could not be verified yet (the certificate could not be fetched)."""


class SignedAnswers:
    """Receipts and signature checks for one call's flow; ``note`` adds to its audit trail."""

    def __init__(self, conn: MParticleConnector, note: Note, sent_for: Callable[[str], bytes]) -> None:
        self.conn = conn
        self.strict = conn.settings.signatures == "strict"
        self.workspace_id = conn.settings.dsr_workspace_id
        self.redactor: Redactor = conn.redactor
        self.note = note
        self.sent_for = sent_for  #: the exact bytes of the submission of a subject_request_id

    def _kept(self, evidence: Mapping[str, Any]) -> dict[str, Any]:
        """What is stored (in the state, the result and the receipt file): the receipt scrubbed by the one rule
        (:meth:`~dsr_framework.redact.Redactor.scrub`), and its body only when it holds no part of a credential.

        The body is kept byte for byte so that an answer can be verified again later (its SHA-256 and the
        signature cover those bytes); a body cut by the redactor could never verify, and a body holding part of a
        credential must not be stored. So such a body is not kept (``"body": null`` with ``body_withheld`` saying
        why); the digest, the signature, the certificate and the verdict stay. An acknowledgement that was not
        verified yet because the certificate could not be fetched can then never be verified: it becomes
        ``unverifiable`` (final), instead of waiting for a check that cannot happen.
        """
        body = evidence.get("body")
        kept: dict[str, Any] = self.redactor.scrub_json({k: v for k, v in evidence.items() if k != "body"})
        kept["body"] = body
        if isinstance(body, str) and self.redactor.leaks(body):
            kept.update(body=None, body_withheld=BODY_WITHHELD)
            if kept.get("kind") == "acknowledgement" and kept.get("reason") == "certificate_unavailable":
                kept.update(reason="unverifiable", detail="the certificate could not be fetched, and the answer "
                            f"cannot be verified later because its body was not kept ({BODY_WITHHELD})")
        return kept

    def acknowledgement(self, answer: Signable, subject_request_id: str, label: str, sent: bytes) -> dict[str, Any]:
        return self._kept(receipt(self.conn.signatures, answer, subject_request_id=subject_request_id, label=label,
                                  kind="acknowledgement", sent=sent, workspace_id=self.workspace_id))

    def cancellation(self, answer: Signable, part: Part) -> dict[str, Any]:
        """The receipt of mParticle's answer to a cancel (verified like a status answer; kept, never required)."""
        return self._kept(receipt(self.conn.signatures, answer, subject_request_id=part.subject_request_id,
                                  label=part.label, kind="cancellation", workspace_id=self.workspace_id))

    def status(self, part: Part, status: DsrStatus) -> None:
        """Verify a signed status answer; a verified one becomes the receipt of a part that has none."""
        answer = status.answer
        if answer is None or not has_signature(answer):
            if part.receipt is None and self.strict:
                raise self._refusal(part.subject_request_id, "no signed answer from mParticle was seen for this "
                                    "request (the acknowledgement was lost and the status answer is unsigned)")
            return
        evidence = self._kept(receipt(self.conn.signatures, answer, subject_request_id=part.subject_request_id,
                                      label=part.label, kind="status", workspace_id=self.workspace_id))
        if evidence["verified"]:
            if part.receipt is None:
                part.receipt = evidence
                self.note("receipt", "a signed status answer stands in for the acknowledgement this connector did "
                          "not see", subject_request_id=part.subject_request_id, receipt=evidence)
            return
        self.note("check status signature", describe(evidence), subject_request_id=part.subject_request_id)
        if self.strict:
            raise self._stop(evidence)

    def reverify(self, parts: list[Part]) -> None:
        """Try again for acknowledgements whose certificate could not be fetched."""
        for part in parts:
            if part.receipt is None or part.receipt.get("reason") != "certificate_unavailable" or \
                    part.receipt.get("kind") != "acknowledgement":
                continue
            again = self._kept(reverify(self.conn.signatures, part.receipt, self.sent_for(part.subject_request_id),
                                        self.workspace_id))
            if again.get("checked_at") != part.receipt.get("checked_at"):
                part.receipt = again
                self.note("receipt", f"verified again: {describe(again)}", subject_request_id=part.subject_request_id,
                          receipt=again)

    def gate(self, parts: list[Part], check: Callable[[Part], Any]) -> None:
        """Under ``strict``: raise unless every part holds a verified receipt (``check`` asks mParticle for the
        status of a part that has none, which may supply a signed answer)."""
        if not self.strict:
            return
        for part in parts:
            if part.receipt is None:
                check(part)
            if part.receipt is not None and not part.receipt["verified"]:
                raise self._stop(part.receipt)

    def _stop(self, evidence: Mapping[str, Any]) -> RetryLaterError | UnsignedAnswerError:
        request_id = evidence["subject_request_id"]
        if evidence.get("reason") == "certificate_unavailable":
            return NotYetVerified(f"mParticle's answer for request {request_id} could not be verified yet "
                                  f"({evidence.get('detail')}); with signatures: strict nothing further is sent "
                                  "until it is", api="dsr")
        return self._refusal(request_id, describe(evidence))

    @staticmethod
    def _refusal(request_id: str, what: str) -> UnsignedAnswerError:
        return UnsignedAnswerError(
            f"mParticle's answer for request {request_id} is {what}; with signatures: strict the connector stops "
            f"and sends nothing further. mParticle may still process request {request_id}: look it up in "
            "mParticle and cancel it there if it should not run", api="dsr")

    def warning(self, parts: list[Part]) -> str | None:
        """What to add to a message when a receipt is missing or did not verify (``signatures: record``)."""
        unverified = [f"of request {p.subject_request_id} is {describe(p.receipt)}" if p.receipt is not None else
                      f"of request {p.subject_request_id} was not seen (no signed answer yet)"
                      for p in parts if p.receipt is None or not p.receipt["verified"]]
        return f"mParticle's acknowledgement {'; '.join(unverified)}" if unverified else None

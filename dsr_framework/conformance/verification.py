"""Whether a result's ``verification`` and ``action_required`` are well-formed, and there where the manifest says.

A host routes on these fields without reading prose (an unverified completion goes to a person; a pending
result that needs a person is not simply polled again), so the harness holds every result to them:

* ``verification`` belongs to final results: a pending one has not finished what it would verify;
  ``action_required`` belongs to pending ones: a final result has nothing left to carry on with;
* ``unverified`` gives at least one reason and the others give none; every reason code is one the contract
  defines (:data:`dsr_framework.verification.REASON_CODES`), with a sentence, and names only identifier
  categories the request carried or the capability declares;
* a capability that declares ``reports_verification`` reports it on every completed result;
* a summary that still says ``verified`` (the convention before the field) agrees with it.

A :class:`~dsr_framework.models.Result` built in code already refuses some of these; a connector in another
process, or one that builds its results otherwise, is judged here all the same.
"""

from __future__ import annotations

from dsr_framework.manifest import Capability
from dsr_framework.models import DsrRequest, Result
from dsr_framework.verification import REASON_CODES, VerificationReason

__all__ = ["verification_problem"]


def verification_problem(hook: str, result: Result, capability: Capability | None,
                         request: DsrRequest | None = None) -> str | None:
    """What is wrong with ``result``'s verification or action required (None: nothing)."""
    if result.status == "pending":
        return f"{hook} returned a pending result with a verification: only a final result has an outcome to " \
               "verify" if result.verification is not None else None
    if result.action_required is not None:
        return f"{hook} returned a {result.status} result with action_required: only a pending result waits for " \
               "a person"
    if result.verification is None:
        declared = capability is not None and capability.reports_verification and result.status == "completed"
        return f"{hook} returned a completed result without verification, but the manifest declares " \
               "reports_verification for it" if declared else None
    return _reasons_problem(hook, result, capability, request)


def _reasons_problem(hook: str, result: Result, capability: Capability | None,
                     request: DsrRequest | None) -> str | None:
    verification = result.verification
    assert verification is not None
    if (verification.status == "unverified") != bool(verification.reasons):
        return f"{hook} returned verification {verification.status} with {len(verification.reasons)} reason(s): " \
               "unverified gives its reasons, and only unverified does"
    known = set(capability.identifier_categories if capability else ()) | set(request.identities if request else ())
    for reason in verification.reasons:
        if (problem := _reason_problem(hook, reason, known)) is not None:
            return problem
    said = result.summary.get("verified")
    if isinstance(said, bool) and said != (verification.status == "verified") and verification.status != \
            "not_applicable":
        return f"{hook}'s summary says verified: {said}, but its verification is {verification.status}"
    return None


def _reason_problem(hook: str, reason: VerificationReason, known: set[str]) -> str | None:
    if reason.code not in REASON_CODES:
        return f"{hook} gave verification reason code {reason.code!r}, which the contract does not define " \
               f"(known: {', '.join(REASON_CODES)})"
    if not reason.message.strip():
        return f"{hook} gave verification reason {reason.code} without a sentence saying why"
    strangers = sorted(set(reason.identifiers) - known) if known else []
    if strangers:
        return f"{hook} gave verification reason {reason.code} for {', '.join(strangers)}, neither a category " \
               "of the request nor one the capability declares"
    return None

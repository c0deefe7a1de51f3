"""A connector's result as it may leave the connector: no secret in it, and its messages fit to show a person.

:func:`clean_result` applies the two rules to every text a connector writes into a result: the secrets rule
(:meth:`dsr_framework.redact.Redactor.scrub`, emails masked in messages) to message, error, audit trail,
summary, state, file descriptions, verification reasons and the action required, and the text rule
(:func:`dsr_framework.text.for_people`) to the one-line texts (message, error message, audit actions and
outcomes, check names and messages, verification reasons, the action required), so that a
server's words can neither drive a terminal nor add a line wherever the host shows them. Ids and paths the
host supplied (request id, output folder) and the fixed vocabularies (status, error class) are left as they
are. Summary and state are data: their strings are scrubbed of secrets, not rewritten for display (a reader
that shows them uses :func:`~dsr_framework.text.for_people` or :func:`~dsr_framework.text.json_for_people`).

A connector calls it where its results leave it. A state it signs must be scrubbed before signing; scrubbing is
idempotent, so such a state passes through unchanged and still verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from dsr_framework.models import AuditEvent, ConnectionResult, Result
from dsr_framework.redact import Redactor
from dsr_framework.text import for_people
from dsr_framework.verification import Verification

__all__ = ["clean_result"]

R = TypeVar("R", Result, ConnectionResult)


def clean_result(result: R, redactor: Redactor) -> R:
    """``result`` with every text in it scrubbed of secrets, and its one-line texts fit for people."""
    def line(text: str) -> str:
        return for_people(redactor(text))

    if isinstance(result, ConnectionResult):
        checks = tuple(replace(c, name=line(c.name), message=line(c.message)) for c in result.checks)
        return replace(result, checks=checks, message=line(result.message))
    error = replace(result.error, message=line(result.error.message)) if result.error is not None else None
    audit = tuple(AuditEvent(line(e.action), line(e.outcome), redactor.scrub_json(dict(e.detail)), e.at)
                  for e in result.audit)
    files = tuple(replace(f, description=line(f.description)) for f in result.files)
    state = redactor.scrub_json(dict(result.state)) if result.state is not None else None
    action = replace(result.action_required, message=line(result.action_required.message)) \
        if result.action_required is not None else None
    return replace(result, message=line(result.message), error=error, audit=audit, files=files,
                   summary=redactor.scrub_json(dict(result.summary)), state=state, action_required=action,
                   verification=_verification(result.verification, line))


def _verification(verification: Verification | None, line: Callable[[str], str]) -> Verification | None:
    if verification is None:
        return None
    reasons = tuple(replace(r, message=line(r.message), identifiers=tuple(line(i) for i in r.identifiers))
                    for r in verification.reasons)
    return replace(verification, reasons=reasons)

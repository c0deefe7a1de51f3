"""Whether a result's outcome was checked in the service, and why not: the contract's verification vocabulary.

A connector that says "completed" says what the service answered. Whether the outcome was then *checked*
(an erasure confirmed by searches that find nobody, an export known to cover the whole subject, a consent
change confirmed) is a separate fact a host must be able to route on without parsing prose, so results carry
it as data (``verification`` in ``schemas/result.schema.json``):

* ``verified``: the connector checked the outcome in the service and found it as the result says (no reasons);
* ``unverified``: it could not check all of it; each reason says why, with a code from :data:`REASON_CODES`,
  a sentence for people and the identifier types it concerns. A host sends these to a person;
* ``not_applicable``: there was nothing the connector could check, and no known gap (an access request's
  export; an opt-out, where the service offers no way to read consent back).

The reason codes are a closed list, kept here and nowhere else (the result schema's enum is tested against
it): a host can act on each one. Adding a code is adding a row here and to the schema's enum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["REASON_CODES", "Verification", "VerificationReason", "VerificationStatus"]

VerificationStatus = Literal["verified", "unverified", "not_applicable"]

#: Every reason a connector may give for an unverified outcome, and what it means for a host.
REASON_CODES: dict[str, str] = {
    "login_id_required": "the service reaches known profiles (those with a login id) only through that login id, "
                         "and the request carries none: neither the request nor any check reached them",
    "immutable_id_required": "the service resolves profiles by an immutable id the request does not carry, so a "
                             "check by the other identifiers cannot see them",
    "no_baseline": "the identifiers that decide what the service can reach matched no profile when the request "
                   "was first looked up (or whether they did is unknown): a profile held under another value is "
                   "out of reach of the request and of every check alike, so finding nothing confirms nothing",
    "not_searchable": "no API of the service can look up an identifier of this type",
    "api_not_configured": "only an API the connector is not configured for could check this identifier (for "
                          "mParticle: the Profile API, for an mpid or an immutable id)",
    "check_failed": "a check that should have run did not give an answer (the message says which and why)",
}


@dataclass(frozen=True)
class VerificationReason:
    """One reason an outcome could not be fully checked: a code from :data:`REASON_CODES`, a sentence for
    people, and the identifier types it concerns (the request's categories; empty: the request as a whole)."""

    code: str
    message: str
    identifiers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in REASON_CODES:
            raise ValueError(f"unknown verification reason code {self.code!r} (known: {', '.join(REASON_CODES)})")

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "identifiers": list(self.identifiers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationReason:
        return cls(data["code"], data["message"], tuple(data.get("identifiers", ())))


@dataclass(frozen=True)
class Verification:
    """Whether the outcome was checked (see the module docstring)."""

    status: VerificationStatus
    reasons: tuple[VerificationReason, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in get_args(VerificationStatus):
            raise ValueError(f"unknown verification status {self.status!r}")
        if (self.status == "unverified") != bool(self.reasons):
            raise ValueError("an unverified outcome gives its reasons, and only an unverified one does")

    @classmethod
    def of(cls, reasons: Sequence[VerificationReason], *, checked: bool = True) -> Verification:
        """``unverified`` with ``reasons`` when there are any; else ``verified`` (or ``not_applicable`` when
        there was nothing to check)."""
        if reasons:
            return cls("unverified", tuple(reasons))
        return cls("verified" if checked else "not_applicable")

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": [r.to_dict() for r in self.reasons]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        return cls(data["status"], tuple(VerificationReason.from_dict(r) for r in data.get("reasons", ())))

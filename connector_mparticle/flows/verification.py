"""What the connector could not check, as the contract's verification reasons (:mod:`dsr_framework.verification`).

Deletion, access and opt-out all say, in the result's ``verification``, whether their outcome was checked and,
if not, why, with one of the contract's reason codes: a host routes unverified outcomes to a person without
reading prose. The limits themselves are found in :mod:`connector_mparticle.flows.lookup` (what each API can
search, what the workspace's login ids put out of reach); this module only names them in the contract's terms,
with the request's own identifier categories.
"""

from __future__ import annotations

from collections.abc import Iterable

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.flows.lookup import Check, blind_spots
from connector_mparticle.flows.subject import Subject
from connector_mparticle.identities import MPID
from dsr_framework.models import VerificationReason

__all__ = ["category_of", "check_reasons", "reach_reasons"]


def category_of(conn: MParticleConnector, type_name: str, subject: Subject | None = None) -> str:
    """The request category that carries mParticle identity type ``type_name`` (the subject's own, else the
    configuration's mapping, else the type name itself): how a host names it."""
    if subject is not None:
        carried = next((i.category for i in subject.identifiers if i.kind.name == type_name), None)
        if carried is not None:
            return carried
    mapped = sorted(c for c, t in conn.settings.identity_mapping.items() if t == type_name)
    return type_name if type_name in mapped or not mapped else mapped[0]


def check_reasons(checks: Iterable[Check]) -> list[VerificationReason]:
    """One reason per identifier no API could check (``found`` None)."""
    reasons = []
    for c in checks:
        if c.found is not None:
            continue
        code = "api_not_configured" if c.identifier.kind.name == MPID else "not_searchable"
        reasons.append(VerificationReason(code, f"{c.identifier.kind.name}: {c.why}", (c.identifier.category,)))
    return reasons


def reach_reasons(conn: MParticleConnector, subject: Subject,
                  found_before: bool | None = True) -> list[VerificationReason]:
    """The profiles the request could not reach at all (:func:`connector_mparticle.flows.lookup.blind_spots`):
    known profiles without a login id, profiles gated by an immutable id the request lacks, and login ids that
    matched nothing when first looked up (``found_before``)."""
    return [VerificationReason(limit.code, limit.message,
                               tuple(dict.fromkeys(category_of(conn, name, subject) for name in limit.types)))
            for limit in blind_spots(conn, subject, found_before)]

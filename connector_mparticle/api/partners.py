"""Where mParticle forwarded a request: the per-partner entries of a status's ``extensions``.

``developers/dsr-api/v3`` ("Get the status of an OpenDSR request"): a status carries ``extensions``, one entry per
output the workspace forwards erasures to, each with ``domain``, ``name``, ``status`` and ``status_message``;
``status`` is ``pending``, ``skipped`` (the partner takes none of the request's identities), ``sent`` or
``failed``. ``guides/data-subject-requests`` adds that mParticle "can't guarantee that data is ultimately deleted
by the integration partner": ``sent`` means forwarded, not erased, and a ``failed`` partner never received it.
The documented examples show ``extensions`` as null when there are no partners; any other shape (an object keyed
by domain, a string) is read as one ``unreadable`` entry, so that it is reported and never taken for "no partners".

Reading is per entry: one entry in an unexpected form is kept as ``unreadable`` (and reported so), never allowed
to hold back the request's own progress, and never read as ``sent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector_mparticle.http.answers import Malformed, field_enum, field_str, obj

__all__ = ["FORWARDING_STATUSES", "PartnerStatus", "failed_partners", "partner_summary", "read_partners"]

#: The documented forwarding statuses, and ``unreadable`` for an entry this connector could not read.
FORWARDING_STATUSES = ("pending", "skipped", "sent", "failed")
#: At most this many entries are read (a workspace has a handful of outputs; the rest are counted).
MAX_PARTNERS = 200
_MAX_TEXT = 256  # guides/default-service-limits: names over 256 characters are truncated by mParticle


@dataclass(frozen=True)
class PartnerStatus:
    """One output's forwarding status for one OpenDSR request."""

    domain: str | None
    name: str | None
    status: str  #: one of FORWARDING_STATUSES, or ``unreadable``
    status_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "name": self.name, "status": self.status,
                "status_message": self.status_message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartnerStatus:
        return cls(data.get("domain"), data.get("name"), str(data.get("status")), data.get("status_message"))


def _entry(value: Any) -> PartnerStatus:
    try:
        entry = obj(value, "a forwarding entry")
        status = field_enum(entry.get("status"), "a forwarding status", FORWARDING_STATUSES)
        return PartnerStatus(field_str(entry.get("domain"), "a partner domain", max_chars=_MAX_TEXT),
                             field_str(entry.get("name"), "a partner name", max_chars=_MAX_TEXT), status,
                             field_str(entry.get("status_message"), "a status_message", max_chars=1024))
    except Malformed:
        return PartnerStatus(None, None, "unreadable")


def read_partners(extensions: Any) -> tuple[PartnerStatus, ...]:
    """The forwarding entries of a status's ``extensions``: none when it is null or absent (documented: no
    partners); anything else that is not the documented list is one ``unreadable`` entry, never "no partners"."""
    if extensions is None:
        return ()
    if not isinstance(extensions, list):
        return (PartnerStatus(None, None, "unreadable"),)
    return tuple(_entry(value) for value in extensions[:MAX_PARTNERS])


def failed_partners(partners: list[dict[str, Any]]) -> list[str]:
    """The names (or domains) of the partners whose forwarding failed or could not be read."""
    return [str(p.get("name") or p.get("domain") or "an unnamed partner") for p in partners
            if p.get("status") in ("failed", "unreadable")]


def partner_summary(partners: list[dict[str, Any]]) -> dict[str, Any]:
    """What a result's summary says about forwarding: each partner, counts by status, and those that failed."""
    counts: dict[str, int] = {}
    for partner in partners:
        counts[partner["status"]] = counts.get(partner["status"], 0) + 1
    return {"partners": partners, "partner_counts": counts, "partners_failed": failed_partners(partners)}

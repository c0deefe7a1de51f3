"""Deadlines: when a request is due, when mParticle expects to finish it, and when to skip the waiting period.

A request is due at ``request.due_at`` when the host gives one, else by its regulation: GDPR art. 12(3) gives a
controller one month (taken as 30 days), CCPA (Cal. Civ. Code 1798.130) 45 days, from when the subject asked.

mParticle's erasures wait ``erasure.waiting_period_days`` (7 in its DSR pages, 14 in its newer bulk-deletion
page) before processing, and take up to ``erasure.processing_days`` (14) after; ``skip_waiting_period`` shortens
the whole to 1-14 days (``guides/data-subject-requests``). Whether to ask for it is ``erasure.skip_waiting_period``:
``never``, ``always``, or ``when_at_risk``: only when the longest documented wait ends after the due date.

mParticle's times run from when *it* receives the request (``sent``: when this connector first sent it, kept in
the request's state), which may be days after the subject asked: the due date runs from the subject's request,
the wait from the sending. The decision is made once for each OpenDSR request, when it is first sent, and kept
with it in the state (``Part.terms``), so the submission rebuilt on a later call (to check mParticle's signed
acknowledgement) is the one sent, byte for byte, whatever the clock or the settings say by then; a part sent
later (the mpid of a split request) is decided, and estimated, from its own sending.

Once mParticle states an ``expected_completion_time``, each result says whether it falls after the due date
(``summary.deadline.at_risk``); before that, the documented estimate stands in. Either is "now" at the earliest
while the request is not complete: a time already past is no promise that it will be done on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from connector_mparticle.settings import Settings
from dsr_framework.models import DsrRequest, format_time

__all__ = ["Deadline", "PartOutlook", "deadline", "skip_waiting"]

#: Days from the subject's request to the controller's answer when the host gives no due date.
DUE_DAYS = {"gdpr": 30, "ccpa": 45}
#: Access and portability jobs run on Mondays and Thursdays and complete within 48 h (guides/data-subject-requests).
ACCESS_DAYS = 6
SKIPPED_WAIT_DAYS = 1  #: "under 24 hours" of waiting with skip_waiting_period


@dataclass(frozen=True)
class Deadline:
    """Where a request stands against its due date."""

    due_at: datetime
    due_from: str  #: ``request`` (the host's due_at) or the regulation's default
    expected: datetime
    expected_from: str  #: ``mparticle`` (its expected_completion_time) or ``estimate``

    @property
    def at_risk(self) -> bool:
        return self.expected > self.due_at

    def to_dict(self) -> dict[str, Any]:
        return {"due_at": format_time(self.due_at), "due_from": self.due_from,
                "expected_completion": format_time(self.expected), "expected_from": self.expected_from,
                "at_risk": self.at_risk,
                "margin_hours": round((self.due_at - self.expected).total_seconds() / 3600, 1)}

    def sentence(self) -> str:
        """One line for a message, when the request is at risk."""
        where = "mParticle expects" if self.expected_from == "mparticle" else "mParticle's documented times give"
        return (f"at risk: {where} completion at {format_time(self.expected)}, after the request's due date "
                f"{format_time(self.due_at)}")


def _later(when: datetime, days: float) -> datetime:
    """``when`` plus ``days``, the latest time there is when that is past it (a host's ``submitted_at`` in the
    year 9999 must not crash a call after mParticle accepted the request)."""
    try:
        return when + timedelta(days=days)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _due(request: DsrRequest) -> tuple[datetime, str]:
    if request.due_at is not None:
        return request.due_at, "request"
    return _later(request.submitted_at, DUE_DAYS[request.regulation]), f"{request.regulation} default"


def _estimate(request: DsrRequest, settings: Settings, skipped: bool, sent: datetime) -> datetime:
    """The latest completion mParticle's documents allow for a request it received at ``sent`` (never before the
    subject asked)."""
    start = max(sent, request.submitted_at)
    if request.type != "deletion":
        return _later(start, ACCESS_DAYS)
    wait = SKIPPED_WAIT_DAYS if skipped else settings.erasure.waiting_period_days
    return _later(start, wait + settings.erasure.processing_days)


def skip_waiting(request: DsrRequest, settings: Settings, sent: datetime) -> bool:
    """Whether the erasure of ``request``, sent to mParticle at ``sent``, asks it to skip its waiting period (see
    the module docstring)."""
    policy = settings.erasure.skip_waiting_period
    if settings.skip_waiting_period or policy == "always":
        return True
    return policy == "when_at_risk" and _estimate(request, settings, False, sent) > _due(request)[0]


class PartOutlook(NamedTuple):
    """One OpenDSR request of a host request, as far as its completion goes."""

    expected: datetime | None  #: mParticle's expected completion (None: it gave none, or it is not sent yet)
    sent: datetime  #: when it was (or, not sent yet, would be) sent
    skipped: bool  #: whether it asks (or would ask) to skip the waiting period


def deadline(request: DsrRequest, settings: Settings, parts: list[PartOutlook], now: datetime) -> Deadline:
    """``request`` against its due date, its unfinished OpenDSR requests being ``parts`` at ``now``: the latest of
    their completions counts, each mParticle's time or, where it gave none (or the part is not sent yet), the
    documented estimate from that part's own sending, so knowing one part's time never hides another's."""
    due, due_from = _due(request)
    if not parts:
        return Deadline(due, due_from, now, "mparticle")
    times = [p.expected if p.expected is not None else _estimate(request, settings, p.skipped, p.sent) for p in parts]
    source = "mparticle" if all(p.expected is not None for p in parts) else "estimate"
    return Deadline(due, due_from, max(*times, now), source)

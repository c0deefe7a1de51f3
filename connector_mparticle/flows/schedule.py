"""When to check a pending request again: shortly after mParticle's ``expected_completion_time``, within bounds.

The check goes one minimum interval after the expected time: the estimate is mParticle's own, and a check at
the very instant it names may find the job a moment short of done, which costs an extra call.

Never sooner than the configured minimum (no busy loop), never later than the maximum (a request must not
look stuck), and, once a request is overdue, at growing intervals (minimum x 2^n) so a late job costs a
handful of status calls, not one per minute for a week.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["next_check"]


def next_check(now: datetime, expected: datetime | None, overdue_checks: int, minimum: float,
               maximum: float) -> datetime:
    """The time of the next status check.

    Expected time within ``maximum``: one ``minimum`` after it (exceeding ``maximum`` by at most that margin,
    rather than checking a moment too early). Further away: ``maximum``. Overdue or unknown: ``minimum``
    doubled per overdue check, capped at ``maximum``.
    """
    if expected is not None and expected > now:
        remaining = (expected - now).total_seconds()
        wait = remaining + minimum if remaining <= maximum else maximum
        return now + timedelta(seconds=max(wait, minimum))
    wait = minimum * (2 ** min(overdue_checks, 30))
    return now + timedelta(seconds=min(max(wait, minimum), maximum))

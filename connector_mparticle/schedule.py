"""When to check a pending request again: at mParticle's ``expected_completion_time``, within bounds.

Never sooner than the configured minimum (no busy loop), never later than the maximum (a request must not
look stuck), and, once a request is overdue, at growing intervals (minimum x 2^n) so a late job costs a
handful of status calls, not one per minute for a week.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["next_check"]


def next_check(now: datetime, expected: datetime | None, overdue_checks: int, minimum: float,
               maximum: float) -> datetime:
    """The time of the next status check."""
    if expected is not None and expected > now:
        wait = (expected - now).total_seconds()
    else:
        wait = minimum * (2 ** min(overdue_checks, 30))
    return now + timedelta(seconds=min(max(wait, minimum), maximum))

"""The retry policy, as small pure functions so tests can pin every decision.

Retry 429, every 5xx (a server's failure, never a verdict: 501 and Cloudflare's 520-599 included),
connection errors, timeouts and unreadable responses; never 400/401/403/404/409 (each has a meaning the
caller handles). Honour ``Retry-After`` (capped); otherwise exponential backoff with full jitter.
The caller bounds the total time.
"""

from __future__ import annotations

import random

from connector_mparticle.http.answers import header_seconds

__all__ = ["RETRYABLE_STATUSES", "backoff_delay", "parse_retry_after", "retry_delay", "should_retry"]

RETRYABLE_STATUSES = frozenset({429, *range(500, 600)})
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


def should_retry(status: int | None) -> bool:
    """Whether a response status (``None`` for a network error or unreadable body) is worth retrying."""
    return status is None or status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None if absent or unreadable
    (:func:`~connector_mparticle.http.answers.header_seconds`: ASCII digits only, so "²" is unreadable, not 2)."""
    return header_seconds(value, now)


def backoff_delay(attempt: int, rng: random.Random | None = None, base: float = BACKOFF_BASE_SECONDS,
                  cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Full jitter: uniform between 0 and ``min(cap, base * 2**attempt)`` (attempt counts from 0)."""
    ceiling = min(cap, base * (2 ** min(attempt, 32)))
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(attempt: int, retry_after: str | None, max_retry_after: float,
                rng: random.Random | None = None) -> float:
    """How long to wait before the next attempt: ``Retry-After`` (capped) when given, else backoff."""
    told = parse_retry_after(retry_after)
    if told is not None:
        return min(told, max_retry_after)
    return backoff_delay(attempt, rng)

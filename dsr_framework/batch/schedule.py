"""Where a request stands after a call: final, or pending until a given time (the runner's one policy).

A ``pending`` result is checked again at its ``next_check_at``. A ``failed`` result of class
``retry_later`` (the vendor was busy, or its budget ran out before anything was sent) is what the contract
says: try again later. It is retried after ``retry_after`` when the result names one, else after a doubling
delay, at most :data:`RETRIES` times; then it stays failed. Every other result is final.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsr_framework.models import Result

__all__ = ["RETRIES", "Next", "after", "retriable"]

RETRIES = 5  #: retry_later failures retried per request before the failure stands
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
RECHECK_SECONDS = 60.0  #: a pending result without a next_check_at (the contract asks for one) is checked then


@dataclass(frozen=True)
class Next:
    """Where the request stands: ``pending`` (with when to call again), ``completed`` or ``failed``; ``retry``
    when a failure is being retried (one more of the :data:`RETRIES`)."""

    status: str
    at: float | None
    retry: bool = False


def retriable(result: Result) -> bool:
    """True for a failure the contract says to try again later."""
    return result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"


def after(result: Result, retries: int, now: float) -> Next:
    """Where a request stands after ``result``, having been retried ``retries`` times before."""
    if result.status == "pending":
        at = result.next_check_at.timestamp() if result.next_check_at is not None else now + RECHECK_SECONDS
        return Next("pending", at)
    error = result.error
    if error is not None and retriable(result) and retries < RETRIES:
        delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** retries)
        at = error.retry_after.timestamp() if error.retry_after is not None else now + delay
        return Next("pending", max(at, now + 1.0), retry=True)
    return Next(result.status, None)

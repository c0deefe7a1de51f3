"""The calls the service saw, compared with the rate limits the manifest declares.

The oracle's ``calls()`` lists every API call the service received as ``(seconds, api)``: when each *arrived*.
A connector that keeps to its limit does so by when it *sends*, and arrivals bunch up: the first calls of a
burst wait in the service's queue while the last, sent a second later, do not. So the two judgments allow
for it:

- :func:`excess`, applied to every check, slides a window of each limit's length (``per``) over the calls to
  its API and reports one holding more than :data:`FAR` times the limit: a connector hammering the service,
  never a throttled one whose calls arrived bunched (at most twice its ``target_share`` of the limit);
- :func:`too_fast`, applied to a burst of requests sized to pass a per-second limit, reports a burst whose
  first ``limit + 1`` calls all arrived within :data:`SPREAD` of the window: a throttled connector needs the
  whole window to send them, so only one that does not throttle gets them there that fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dsr_framework.manifest import RateLimit

__all__ = ["FAR", "SPREAD", "Excess", "busiest", "calls_by_api", "excess", "too_fast"]

FAR = 1.5  #: a window holding more than this many times a limit is hammering, whatever the arrival order
SPREAD = 0.75  #: limit + 1 calls arriving within this share of the window were not throttled


@dataclass(frozen=True)
class Excess:
    """More calls to one API than a declared limit allows, in ``seconds``."""

    limit: RateLimit
    calls: int
    seconds: float

    def __str__(self) -> str:
        return (f"made {self.calls} calls to the {self.limit.api} API within {self.seconds:.2f}s, far over the "
                f"{self.limit.limit:g} per {self.limit.per} its manifest declares (rate_limits; it must throttle "
                f"itself to target_share of that, across its threads)")


def calls_by_api(calls: Iterable[Sequence[object]]) -> dict[str, list[float]]:
    """The oracle's ``(seconds, api)`` pairs as sorted times per API (malformed entries are ignored)."""
    found: dict[str, list[float]] = {}
    for entry in calls:
        if len(entry) >= 2 and isinstance(entry[0], (int, float)) and isinstance(entry[1], str):
            found.setdefault(entry[1], []).append(float(entry[0]))
    return {api: sorted(times) for api, times in found.items()}


def busiest(times: Sequence[float], window: float, since: float | None = None) -> int:
    """The most of ``times`` (sorted) inside any window of ``window`` seconds that ends after ``since``."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        if since is None or at > since:
            most = max(most, end - start + 1)
    return most


def excess(calls: Iterable[Sequence[object]], limits: Iterable[RateLimit], since: float | None = None) -> list[Excess]:
    """Each declared limit that a window of its length (ending after ``since``) held :data:`FAR` times over."""
    by_api = calls_by_api(calls)
    found = []
    for limit in limits:
        most = busiest(by_api.get(limit.api, []), limit.window_seconds, since)
        if most > FAR * limit.limit:
            found.append(Excess(limit, most, limit.window_seconds))
    return found


def too_fast(calls: Iterable[Sequence[object]], limit: RateLimit, since: float) -> Excess | None:
    """The burst after ``since`` when its first ``limit + 1`` calls to the API arrived within :data:`SPREAD` of
    the limit's window (None: they took longer, or there were not that many)."""
    times = [t for t in calls_by_api(calls).get(limit.api, []) if t > since]
    count = int(limit.limit) + 1
    if len(times) < count:
        return None
    span = times[count - 1] - times[0]
    return Excess(limit, count, span) if span < SPREAD * limit.window_seconds else None

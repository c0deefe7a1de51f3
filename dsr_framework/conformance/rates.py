"""The calls the service saw, compared with the rate limits the manifest declares.

The oracle's ``calls()`` lists every API call the service received as ``(seconds, api)``. For each declared
limit (``limit`` calls per ``per``), :func:`excess` slides a window of that length over the calls to that API
and reports the busiest window that holds more than the limit: a connector must throttle itself to
``target_share`` of each limit, so passing the limit itself is never an accident of timing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dsr_framework.manifest import RateLimit

__all__ = ["Excess", "busiest", "calls_by_api", "excess"]


@dataclass(frozen=True)
class Excess:
    """The busiest window over one declared limit."""

    limit: RateLimit
    calls: int

    def __str__(self) -> str:
        return (f"made {self.calls} calls to the {self.limit.api} API within one {self.limit.per}, over the "
                f"{self.limit.limit:g} per {self.limit.per} its manifest declares (rate_limits; it must throttle "
                f"itself to target_share of that)")


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
    """Each declared limit that the calls passed (in a window ending after ``since``, if given)."""
    by_api = calls_by_api(calls)
    found = []
    for limit in limits:
        most = busiest(by_api.get(limit.api, []), limit.window_seconds, since)
        if most > limit.limit:
            found.append(Excess(limit, most))
    return found

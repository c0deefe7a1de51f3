"""A backlog's plan: the remote calls it needs per API, the limit that binds, and how long it will take.

Everything comes from the connector's manifest: what one request of each type costs (``request_costs``:
calls per API, plus calls per identifier, and the longest the vendor takes to make a request final) and the
vendor's limits (``rate_limits``), at the share of them the connector is configured to use
(``target_share``, with per-second overrides). Limits over a second or a minute pace the calls; limits over
longer windows (mParticle's new requests per day) are caps: the first ``cap`` calls go as fast as the paces
allow, the next ones a window later. The binding limit is the one that takes longest; the ETA adds the
vendor's own processing time (an erasure waits weeks in mParticle, whatever the limits).

Requests already under way are counted at their full cost: an upper bound, since part of it is spent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dsr_framework.manifest import Manifest, RequestCost

__all__ = ["Budget", "Plan", "plan_backlog"]

PACED_UP_TO_SECONDS = 60.0  #: limits over longer windows are caps, not paces
_PER = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}

Open = Counter[tuple[str, int, bool]]  #: how many requests, by (type, identifiers, already started)


@dataclass(frozen=True)
class Budget:
    """One API's limit as the plan uses it, and the calls the backlog needs from it."""

    api: str
    limit: float  #: per window, as published (or as overridden)
    window_seconds: float
    share: float
    calls: float
    published: bool = True
    overridden: bool = False

    @property
    def allowed(self) -> float:
        """Calls this connector allows itself per window (the target share of the limit)."""
        return self.limit * self.share

    @property
    def per_second(self) -> float:
        return self.allowed / self.window_seconds

    @property
    def cap(self) -> bool:
        """True for a cap over a long window (a day), False for a pace (per second or minute)."""
        return self.window_seconds > PACED_UP_TO_SECONDS

    @property
    def seconds(self) -> float:
        """How long the backlog's calls take under this limit alone."""
        if not self.cap:
            return self.calls / self.per_second
        allowed = max(1, math.floor(self.allowed))
        return math.floor((self.calls - 1) / allowed) * self.window_seconds if self.calls > allowed else 0.0

    def describe(self) -> str:
        """``dsr: 1,000/min, 750/min at 75%``."""
        per = _PER.get(self.window_seconds, f"{self.window_seconds:g} s")
        origin = " (override)" if self.overridden else "" if self.published else " (not published)"
        return (f"{self.api}: {_number(self.limit)}/{per}{origin}, {_number(self.allowed)}/{per} at "
                f"{self.share:.0%}")


def _number(value: float) -> str:
    """``1,000``, ``202.5``, ``22.5``, ``0.75``: whole numbers as they are, others to a tenth (three significant
    digits below 100)."""
    if value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.1f}".rstrip("0").rstrip(".") if value >= 100 else f"{value:,.3g}"


@dataclass(frozen=True)
class Plan:
    """What a backlog needs and how long it takes; :meth:`lines` says it in words."""

    connector: str
    to_start: Mapping[str, int]
    under_way: Mapping[str, int]
    budgets: tuple[Budget, ...]
    target_share: float
    costs: Mapping[str, RequestCost] = field(default_factory=dict)
    unlimited: Mapping[str, float] = field(default_factory=dict)  #: calls to APIs without a declared limit
    unpriced: tuple[str, ...] = ()  #: request types the manifest gives no cost for

    @property
    def requests(self) -> int:
        return sum(self.to_start.values()) + sum(self.under_way.values())

    @property
    def binding(self) -> Budget | None:
        """The limit that takes longest (None when no call is limited)."""
        busy = [b for b in self.budgets if b.calls > 0]
        return max(busy, key=lambda b: (b.seconds, not b.cap)) if busy else None

    @property
    def send_seconds(self) -> float:
        """How long the calls take at the target share of the binding limit."""
        return self.binding.seconds if self.binding is not None else 0.0

    @property
    def completion_seconds(self) -> float:
        """The vendor's longest processing time among the request types in the backlog."""
        kinds = {k for k, n in [*self.to_start.items(), *self.under_way.items()] if n}
        return max((self.costs[k].completion_seconds for k in kinds if k in self.costs), default=0.0)

    @property
    def eta_seconds(self) -> float:
        return self.send_seconds + self.completion_seconds

    def budget(self, api: str) -> Budget | None:
        return next((b for b in self.budgets if b.api == api), None)

    def cost(self, kind: str, identifiers: int) -> dict[str, float]:
        """The calls, by API, of one request (nothing for a type without a declared cost)."""
        cost = self.costs.get(kind)
        return cost.for_request(identifiers) if cost is not None else {}

    def lines(self, duration: Callable[[float], str]) -> list[str]:
        """The plan in words, one line each; ``duration`` formats seconds (``4 min 10 s``)."""
        counts = Counter(self.to_start) + Counter(self.under_way)
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items()) if n) or "nothing"
        started = sum(self.under_way.values())
        lines = [f"{self.requests:,} request(s) for {self.connector}: {kinds}"
                 + (f" ({started:,} already under way)" if started else "")]
        for budget in self.budgets:
            if budget.calls:
                lines.append(f"  {_number(budget.calls)} {budget.api} calls · limit {budget.describe()} · "
                             f"{duration(budget.seconds)}")
        lines += [f"  {_number(calls)} {api} calls (no limit declared)" for api, calls in self.unlimited.items()]
        if self.unpriced:
            lines.append(f"  the connector declares no cost for {', '.join(self.unpriced)} requests: not counted")
        lines.append(self._eta_line(duration))
        return lines

    def _eta_line(self, duration: Callable[[float], str]) -> str:
        binding = self.binding
        if binding is None:
            return "no limited calls: the ETA depends on the connector alone"
        per = _PER.get(binding.window_seconds, f"{binding.window_seconds:g} s")
        kind = "cap" if binding.cap else "limit"
        line = (f"binding: the {binding.api} {kind} ({_number(binding.allowed)}/{per} at {binding.share:.0%}); "
                f"calls done in about {duration(self.send_seconds)}")
        if self.completion_seconds:
            line += (f"; all final within about {duration(self.eta_seconds)} (the vendor takes up to "
                     f"{duration(self.completion_seconds)} to complete a request)")
        return line


def _limits(manifest: Manifest, overrides: Mapping[str, float]) -> dict[str, tuple[float, float, bool, bool]]:
    """(limit, window seconds, published, overridden) by API: the manifest's first limit per API, or the
    override (requests per second)."""
    limits: dict[str, tuple[float, float, bool, bool]] = {}
    for rate in manifest.rate_limits:
        limits.setdefault(rate.api, (rate.limit, rate.window_seconds, rate.published, False))
    for api, per_second in overrides.items():
        limits[api] = (float(per_second), 1.0, True, True)
    return limits


def _tally(open_requests: Open, manifest: Manifest) -> tuple[dict[str, float], Counter[str], Counter[str]]:
    """Calls by API, and requests to start and under way by type."""
    calls: dict[str, float] = {}
    to_start: Counter[str] = Counter()
    under_way: Counter[str] = Counter()
    for (kind, identifiers, started), count in open_requests.items():
        (under_way if started else to_start)[kind] += count
        cost = manifest.request_costs.get(kind)
        for api, n in (cost.for_request(identifiers) if cost else {}).items():
            calls[api] = calls.get(api, 0.0) + n * count
    return calls, to_start, under_way


def plan_backlog(open_requests: Open, manifest: Manifest, target_share: float | None = None,
                 overrides: Mapping[str, float] | None = None) -> Plan:
    """The plan for the requests not final yet (by type, identifiers and whether they are under way)."""
    share = manifest.target_share if target_share is None else target_share
    calls, to_start, under_way = _tally(open_requests, manifest)
    limits = _limits(manifest, overrides or {})
    budgets = tuple(Budget(api, limit, window, share, float(calls.get(api, 0)), published, overridden)
                    for api, (limit, window, published, overridden) in limits.items())
    kinds = {kind for (kind, _, _), n in open_requests.items() if n}
    return Plan(manifest.id, dict(to_start), dict(under_way), budgets, share, dict(manifest.request_costs),
                {api: n for api, n in calls.items() if api not in limits},
                tuple(sorted(k for k in kinds if k not in manifest.request_costs)))

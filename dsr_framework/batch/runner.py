"""The runner loop: claim the requests whose time has come, hand them to an executor, record every result.

One loop serves both executors: :class:`~dsr_framework.batch.local.LocalExecutor` (threads of this process)
and :class:`~dsr_framework.batch.fleet.FleetExecutor` (Celery workers). Each turn it collects the steps that
ended, claims as many due requests as there are free workers (nearest due date first; a request not started
yet only while the long-window caps of the plan allow it, counted from the store, so a restart does not
forget the day's submissions), and updates the progress. It never sleeps past the next due check.

It ends when every request is final; without ``wait``, also when nothing is in flight and the next check is
more than ``idle_seconds`` away (run it again, from cron for instance, to carry on). :class:`StopFlag` ends it
early: the first stop lets the steps in flight finish (their results are recorded), the second ends it at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from dsr_framework.batch.plan import Open, Plan
from dsr_framework.batch.progress import CallRate, Display, MeterReader, View
from dsr_framework.batch.schedule import after, retriable
from dsr_framework.batch.step import Job, Sink
from dsr_framework.batch.store import Counts, Store
from dsr_framework.models import Result

__all__ = ["Admission", "Executor", "ExecutorStopped", "Outcome", "Runner", "StopFlag"]

TICK_SECONDS = 0.25  #: the longest the loop waits without looking at the clock, the stop flag and the progress
REPLAN_SECONDS = 2.0  #: how often the ETA is worked out again from the store
SHOW_SECONDS = 0.5  #: how often the progress is redrawn
RECOUNT_SECONDS = 10.0  #: how often the long-window caps are counted again from the store (in between, locally)
IDLE_SECONDS = 60.0


class ExecutorStopped(RuntimeError):
    """The executor cannot go on (a fleet worker refused a step); the backlog stops where it is, resumable."""


class Executor(Protocol):
    """Runs steps somewhere and reports their results to the runner (its :class:`Sink`)."""

    @property
    def capacity(self) -> int: ...

    def in_flight(self) -> int: ...

    def adopt(self, jobs: list[Job], sink: Sink) -> None: ...

    def start(self, jobs: list[Job], sink: Sink) -> None: ...

    def collect(self, timeout: float) -> int: ...

    def close(self) -> None: ...


class StopFlag:
    """Ctrl-C and SIGTERM: the first asks the runner to stop once the steps in flight end, the second at once."""

    def __init__(self) -> None:
        self.level = 0

    def request(self) -> None:
        self.level += 1

    @property
    def soon(self) -> bool:
        return self.level >= 1

    @property
    def now(self) -> bool:
        return self.level >= 2


@dataclass(frozen=True)
class Outcome:
    """How a run ended: the counts, whether it was stopped, and when the next check is due (pending left)."""

    counts: Counts
    stopped: bool
    next_check: float | None
    seconds: float

    @property
    def final(self) -> bool:
        return self.counts.open == 0


class Admission:
    """Whether one more request of a type may start: what is left of each long-window cap of the plan (new
    requests a day) after the requests the store started within that window, so a restart does not forget
    the day's submissions."""

    def __init__(self, plan: Plan, store: Store, now: float) -> None:
        self._plan, self._store, self._now = plan, store, now
        self.counted_at = now
        self._caps = [b for b in plan.budgets if b.cap]
        self.left: dict[str, float] = {}
        self.refused = False
        for budget in self._caps:
            started = store.started_since(now - budget.window_seconds)
            used = sum(plan.cost(kind, n).get(budget.api, 0.0) * count for (kind, n), count in started.items())
            self.left[budget.api] = math.floor(budget.allowed) - used

    def __call__(self, kind: str, identifiers: int) -> bool:
        cost = self._plan.cost(kind, identifiers)
        if any(cost.get(api, 0.0) > room for api, room in self.left.items()):
            self.refused = True
            return False
        for api in self.left:
            self.left[api] -= cost.get(api, 0.0)
        return True

    @property
    def room(self) -> bool:
        """True while every cap has room for one more call."""
        return all(left >= 1 for left in self.left.values())

    def reopens_at(self) -> float:
        """When the earliest start within a cap's window leaves it, freeing room again."""
        moments = []
        for budget in self._caps:
            first = self._store.first_start_since(self._now - budget.window_seconds)
            moments.append(first + budget.window_seconds if first is not None else self._now)
        return max(self._now + 1.0, min(moments, default=self._now))


class Runner(Sink):
    """Drives a store's requests to final results through an executor (see the module docstring)."""

    def __init__(self, store: Store, executor: Executor, planner: Callable[[Open], Plan], *,
                 display: Display | None = None, stop: StopFlag | None = None, wait: bool = True,
                 idle_seconds: float = IDLE_SECONDS, rate: CallRate | None = None,
                 meter: Callable[[], Mapping[str, int]] | None = None) -> None:
        self.store, self.executor, self.planner = store, executor, planner
        self.display, self.stop = display, stop or StopFlag()
        self.wait, self.idle_seconds = wait, idle_seconds
        self.rate = rate or CallRate()
        self._meter = MeterReader(meter, self.rate) if meter is not None else None
        self._plan = planner(store.open_by_type())
        self._planned_at = time.monotonic()
        self._held_until = 0.0  #: new requests wait for a long-window cap until then
        self._admission: Admission | None = None
        self._shown = float("-inf")

    # -- the sink: every result, as it arrives ----------------------------------------------------------

    def accept(self, request_id: str, token: str, result: Result, calls: Mapping[str, int] | None = None) -> None:
        """Record one call's result under its claim (the retry policy decides where the request stands)."""
        if calls:
            self.rate.add(calls)
        now = time.time()
        retries = self.store.retries(request_id) if retriable(result) else 0
        step = after(result, retries, now)
        self.store.record(request_id, token, result, step.status, step.at, step.retry, now)

    def finished(self, request_id: str, token: str) -> None:
        self.store.release(request_id, token)

    def reclaim(self, request_id: str, token: str) -> Job | None:
        claim = self.store.renew_claim(request_id, token)
        return None if claim is None else Job(claim.request, claim.state, claim.token)

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Run until the backlog is final, idle (without ``wait``) or stopped; the outcome."""
        began = time.monotonic()
        self.executor.adopt([Job(c.request, c.state, c.token) for c in self.store.claims()], self)
        try:
            while not self.stop.now:
                self.executor.collect(TICK_SECONDS if self.stop.soon else self._patience())
                if self.stop.soon:
                    if self.executor.in_flight() == 0:
                        break
                    continue
                self._dispatch()
                if self._done():
                    break
                self._show()
        finally:
            self._show(force=True)
        counts = self.store.counts()
        return Outcome(counts, self.stop.soon and counts.open > 0, self._next_wake(), time.monotonic() - began)

    def _dispatch(self) -> None:
        free = self.executor.capacity - self.executor.in_flight()
        if free <= 0:
            return
        now = time.time()
        admit = self._admit(now)
        claims = self.store.claim(free, now, admit, new=now >= self._held_until)
        if admit is not None and admit.refused:
            self._held_until = admit.reopens_at()
            self._admission = None  # counted again when the cap reopens
        if claims:
            self.executor.start([Job(c.request, c.state, c.token) for c in claims], self)

    def _admit(self, now: float) -> Admission | None:
        """The caps' admission, counted from the store every :data:`RECOUNT_SECONDS` (locally in between)."""
        if not any(b.cap for b in self._plan.budgets):
            return None
        if self._admission is None or now - self._admission.counted_at > RECOUNT_SECONDS:
            self._admission = Admission(self._plan, self.store, now)
        self._admission.refused = False  # this pass's refusals only
        return self._admission

    def _next_wake(self) -> float | None:
        """When the next request is due: a check, or a new request (once its cap has room again)."""
        check = self.store.next_check()
        if not self.store.has_new():
            return check
        new = self._held_until if self._held_until > time.time() else 0.0
        return new if check is None else min(new, check)

    def _patience(self) -> float:
        """How long to wait for a step to end before looking again: not past the next due check."""
        if self.executor.in_flight() >= self.executor.capacity:
            return TICK_SECONDS
        wake = self._next_wake()
        if wake is None:
            return TICK_SECONDS
        return min(TICK_SECONDS, max(0.0, wake - time.time()))

    def _done(self) -> bool:
        if self.executor.in_flight():
            return False
        wake = self._next_wake()
        if wake is None:
            return True  # nothing open
        return not self.wait and wake - time.time() > self.idle_seconds

    def _show(self, force: bool = False) -> None:
        if self.display is None or (not force and time.monotonic() - self._shown < SHOW_SECONDS):
            return
        self._shown = time.monotonic()
        if self._meter is not None:
            self._meter.read()
        if force or time.monotonic() - self._planned_at >= REPLAN_SECONDS:
            self._plan = self.planner(self.store.open_by_type())
            self._planned_at = time.monotonic()
        self.display.update(self._view())

    def _view(self) -> View:
        counts = self.store.counts()
        now = time.time()
        binding = self._plan.binding
        limit = None
        if binding is not None:
            limit = (binding.api, self.rate.per_second(binding.api) * binding.window_seconds / binding.limit,
                     binding.share)
        latest = self.store.latest_check()
        eta = max(self._plan.send_seconds, (latest - now) if latest is not None else 0.0)
        wake = self._next_wake()
        return View(counts, limit, eta, max(0.0, wake - now) if wake is not None else None)

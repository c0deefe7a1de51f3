"""Drive one request to a final result: the one loop every host-side caller uses.

A hook returns ``pending`` with ``state`` and ``next_check_at``; a host stores the state (as JSON) and calls
again at or after that time, until the result is ``completed`` or ``failed``, or until a pending result says a
person must fix something first (``action_required``: calling again would only meet the same problem; the
loop returns it, and the caller calls again once it is fixed). :func:`drive` is that loop,
written once. The command line, the demo, the conformance harness, the benchmarks and the tests all call it;
what differs between them (showing progress, saving each result, Ctrl-C, a time budget) is passed in.

.. code-block:: python

    from dsr_framework.drive import drive

    outcome = drive(lambda state: handle.handle(request, state), budget=60)
    print(outcome.result.status, outcome.calls)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dsr_framework.models import Result

__all__ = ["Driven", "StillPending", "drive", "stored_state"]

Call = Callable[[Mapping[str, Any] | None], Result]


class StillPending(TimeoutError):
    """The request was still pending when the caller's time budget (or call budget) ran out."""

    def __init__(self, message: str, result: Result, calls: int) -> None:
        super().__init__(message)
        self.result = result
        self.calls = calls


@dataclass
class Driven:
    """How a drive ended: the last result (final unless stopped), every result seen, and the number of calls."""

    result: Result
    results: list[Result] = field(default_factory=list)
    calls: int = 0

    @property
    def final(self) -> bool:
        return self.result.final

    @property
    def needs_person(self) -> bool:
        """True when the drive stopped at a pending result that names an action a person must take."""
        return not self.result.final and self.result.action_required is not None


def stored_state(result: Result) -> dict[str, Any] | None:
    """``result.state`` as a host that stores JSON gets it back: a fresh, plain-JSON copy (None if absent)."""
    if result.state is None:
        return None
    copied: dict[str, Any] = json.loads(json.dumps(result.state))
    return copied


def _seconds_until(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return (moment - datetime.now(UTC)).total_seconds()


def drive(
    call: Call,
    *,
    state: Mapping[str, Any] | None = None,
    result: Result | None = None,
    budget: float | None = None,
    max_calls: int | None = None,
    max_wait: float | None = None,
    on_result: Callable[[Result], None] | None = None,
    on_wait: Callable[[Result, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    tick: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> Driven:
    """Call ``call(state)`` until the result is final (or needs a person), honouring each ``next_check_at``.

    Arguments:
        call: one hook call for the request, given the stored state (``None`` on the first call).
        state: the state to start from (a resumed request); ignored when ``result`` is given.
        result: a result already in hand (the first call was made elsewhere): start by waiting on it.
        budget: seconds from now after which a request still pending raises :class:`StillPending` (before
            waiting past it, rather than after); ``None`` waits as long as the service asks.
        max_calls: raise :class:`StillPending` instead of making more calls than this.
        max_wait: return a pending result as it is, instead of waiting, when its next check is more than this
            many seconds away (0: make only the checks that are already due). A host that schedules pending
            requests itself (:mod:`dsr_framework.batch`) drives each request one step at a time this way.
        on_result: called with every result, as soon as it arrives (to save it, check it, show it).
        on_wait: called while waiting, at least every ``tick`` seconds, with the pending result and the
            seconds left until its ``next_check_at``.
        stop: asked before each call and while waiting; when it returns True the loop ends, returning the
            pending result as it is.

    The state passed back is always a JSON round-trip of the one returned, as a host that stores it gets it.
    """
    deadline = None if budget is None else time.monotonic() + budget
    seen: list[Result] = [] if result is None else [result]
    calls = 0

    def make_call(current: Mapping[str, Any] | None) -> Result:
        nonlocal calls
        if max_calls is not None and calls >= max_calls:
            raise StillPending(f"{seen[-1].request_type} still pending after {calls} call(s): {seen[-1].message}",
                               seen[-1], calls)
        calls += 1
        outcome = call(current)
        seen.append(outcome)
        if on_result is not None:
            on_result(outcome)
        return outcome

    latest = result if result is not None else make_call(dict(state) if state is not None else None)
    while not _settled(latest) and not (stop is not None and stop()):
        left = _seconds_until(latest.next_check_at)
        if _beyond(left, max_wait):
            break
        _check_budget(latest, left, deadline, budget, calls)
        if not _wait(latest, left, on_wait, stop, tick, sleep):
            break
        latest = make_call(stored_state(latest))
    return Driven(latest, seen, calls)


def _settled(result: Result) -> bool:
    """True when calling again would not change the result: it is final, or a person must act first."""
    return result.final or result.action_required is not None


def _beyond(left: float, max_wait: float | None) -> bool:
    """True when the next check is further away than the caller is willing to wait."""
    return max_wait is not None and left > max_wait


def _check_budget(pending: Result, left: float, deadline: float | None, budget: float | None, calls: int) -> None:
    """Raise :class:`StillPending` if waiting ``left`` seconds for the next check would pass the deadline."""
    if deadline is not None and time.monotonic() + max(left, 0.0) > deadline:
        raise StillPending(f"{pending.request_type} still pending after its {budget:g}s budget (the next "
                           f"check was {max(left, 0.0):.1f}s away): {pending.message}", pending, calls)


def _wait(pending: Result, left: float, on_wait: Callable[[Result, float], None] | None,
          stop: Callable[[], bool] | None, tick: float, sleep: Callable[[float], None]) -> bool:
    """Wait until ``pending.next_check_at``; False when ``stop`` asked to end the loop."""
    while True:
        if on_wait is not None:
            on_wait(pending, max(left, 0.0))
        if stop is not None and stop():
            return False
        if left <= 0:
            return True
        sleep(min(left, tick))
        left = _seconds_until(pending.next_check_at)

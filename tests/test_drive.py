"""The one drive loop: call until final, honouring next_check_at, passing the state back as a host stores it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dsr_framework import DsrRequest, Result
from dsr_framework.drive import StillPending, drive

REQUEST = DsrRequest("drive-1", "access", "gdpr", {"email": "jane@example.com"}, datetime.now(UTC))


class Remote:
    """A hook that stays pending for ``polls`` calls, asking to be called back ``wait`` seconds later."""

    def __init__(self, polls: int, wait: float = 0.05) -> None:
        self.polls, self.wait = polls, wait
        self.states: list[Mapping[str, Any] | None] = []
        self.called_at: list[datetime] = []

    def __call__(self, state: Mapping[str, Any] | None) -> Result:
        self.states.append(state)
        self.called_at.append(datetime.now(UTC))
        done = len(self.states) > self.polls
        if done:
            return Result(REQUEST.request_id, "access", "completed", "done")
        return Result(REQUEST.request_id, "access", "pending", "working", state={"n": len(self.states), "t": (1, 2)},
                      next_check_at=datetime.now(UTC) + timedelta(seconds=self.wait))


def test_it_calls_again_at_each_next_check_at_until_the_result_is_final() -> None:
    remote = Remote(polls=2)
    driven = drive(remote, tick=0.01)
    assert driven.result.status == "completed" and driven.calls == 3 and len(driven.results) == 3
    gaps = [(b - a).total_seconds() for a, b in zip(remote.called_at, remote.called_at[1:], strict=False)]
    assert all(gap >= 0.045 for gap in gaps), gaps


def test_the_state_comes_back_as_a_json_round_trip_of_the_one_returned() -> None:
    remote = Remote(polls=1, wait=0)
    drive(remote, state={"resume": True})
    assert remote.states[0] == {"resume": True}
    assert remote.states[1] == {"n": 1, "t": [1, 2]}  # a tuple comes back a list, as from any JSON store


def test_a_budget_that_would_be_overrun_raises_before_waiting() -> None:
    remote = Remote(polls=5, wait=3600)
    slept: list[float] = []
    with pytest.raises(StillPending, match="still pending after its 10s budget") as caught:
        drive(remote, budget=10, sleep=slept.append)
    assert slept == [] and caught.value.calls == 1 and caught.value.result.status == "pending"


def test_max_calls_stops_a_request_that_never_finishes() -> None:
    with pytest.raises(StillPending, match="after 4 call"):
        drive(Remote(polls=100, wait=0), max_calls=4)


def test_stop_ends_the_loop_with_the_pending_result_and_callbacks_see_everything() -> None:
    remote = Remote(polls=100, wait=0.02)
    seen: list[str] = []
    waits: list[float] = []
    driven = drive(remote, on_result=lambda r: seen.append(r.status), on_wait=lambda r, left: waits.append(left),
                   stop=lambda: len(seen) >= 2, tick=0.005)
    assert driven.result.status == "pending" and driven.calls == 2 and seen == ["pending", "pending"]
    assert waits and all(0 <= w <= 0.02 for w in waits)


def test_a_result_already_in_hand_is_waited_on_first() -> None:
    remote = Remote(polls=0)
    first = Result(REQUEST.request_id, "access", "pending", "submitted", state={"id": "r-1"},
                   next_check_at=datetime.now(UTC))
    driven = drive(remote, result=first)
    assert remote.states == [{"id": "r-1"}] and driven.calls == 1 and driven.results[0] is first

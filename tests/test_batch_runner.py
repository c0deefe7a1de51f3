"""The runner: every request driven to a final result, nearest due date first, failures the contract says to
retry retried, long-window caps kept across restarts, and a stop that loses nothing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from dsr_framework import DsrRequest, FailureInfo, Result
from dsr_framework.batch import Backlog, StopFlag, plan_backlog
from dsr_framework.batch.plan import Open
from dsr_framework.batch.schedule import RETRIES, after
from dsr_framework.host import load_host
from dsr_framework.manifest import Manifest

NOW = datetime.now(UTC)
MANIFEST = Manifest.from_dict({
    "id": "fake", "name": "Fake", "version": "1.0.0", "description": "d", "documentation_url": "https://x.invalid",
    "credentials_schema": "s.json", "egress_hosts": [], "target_share": 0.5, "hooks": ["handle_deletion"],
    "capabilities": [{"hook": "handle_deletion", "identifier_categories": ["email"], "mode": "asynchronous",
                      "description": "d"}],
    "rate_limits": [{"api": "submit", "limit": 6, "per": "day", "scope": "account", "published": True}],
    "request_costs": {"deletion": {"calls": {"submit": 1}}}})
PACED = Manifest.from_dict({**MANIFEST.raw, "rate_limits": [
    {"api": "submit", "limit": 1000, "per": "second", "scope": "account", "published": True}]})


def requests(count: int, kind: str = "deletion", folder: Path | None = None) -> list[DsrRequest]:
    return [DsrRequest(f"R-{i:02d}", kind, "gdpr", {"email": f"r{i}@example.com"}, NOW,  # type: ignore[arg-type]
                       str(folder) if folder else None, due_at=NOW + timedelta(days=(7 * i) % 11))
            for i in range(count)]


def planner(manifest: Manifest) -> Any:
    return lambda open_requests: plan_backlog(open_requests, manifest)


class Remote:
    """A fake connector: each request is pending ``polls`` times (asking to be checked at once), then completed."""

    def __init__(self, polls: int = 1, fail_first: int = 0, block: threading.Event | None = None) -> None:
        self.polls, self.fail_first, self.block = polls, fail_first, block
        self.calls: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.overlaps = 0
        self.lock = threading.Lock()

    def __call__(self, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        with self.lock:
            self.calls[request.request_id] += 1
            self.running[request.request_id] += 1
            self.overlaps += self.running[request.request_id] > 1
            n = self.calls[request.request_id]
        try:
            if self.block is not None:
                self.block.wait(10)
            return self._answer(request, n)
        finally:
            with self.lock:
                self.running[request.request_id] -= 1

    def _answer(self, request: DsrRequest, n: int) -> Result:
        if n <= self.fail_first:
            return Result(request.request_id, request.type, "failed", "busy", error=FailureInfo(
                "retry_later", "busy", datetime.now(UTC)))
        if n <= self.fail_first + self.polls:
            return Result(request.request_id, request.type, "pending", "working", state={"n": n},
                          next_check_at=datetime.now(UTC) + timedelta(seconds=0.05))
        return Result(request.request_id, request.type, "completed", "done")


def test_every_request_ends_final_and_no_request_is_ever_driven_twice_at_once(tmp_path: Path) -> None:
    remote = Remote(polls=3)
    with Backlog.open(tmp_path / "b") as backlog:
        backlog.add(requests(40))
        outcome = backlog.run(remote, planner(PACED), workers=6, stop=StopFlag())
        lines = {line["request_id"]: line for line in __import__("json").loads(
            backlog.write_reports()[1].read_text())["requests"]}
    assert outcome.final and outcome.counts.completed == 40 and not outcome.stopped
    assert remote.overlaps == 0 and set(remote.calls.values()) == {4}
    assert all(line["outcome"] == "completed" and line["calls"] == 4 for line in lines.values())


def test_a_retry_later_failure_is_retried_then_completes() -> None:
    assert after(Result("a", "opt_out", "failed", "x", error=FailureInfo("retry_later", "x")), 0, 100.0).status \
        == "pending"
    assert after(Result("a", "opt_out", "failed", "x", error=FailureInfo("retry_later", "x")), RETRIES,
                 100.0).status == "failed"
    assert after(Result("a", "opt_out", "failed", "x", error=FailureInfo("rejected", "x")), 0, 100.0).status \
        == "failed"


def test_retried_failures_are_counted_and_end_completed(tmp_path: Path) -> None:
    remote = Remote(polls=0, fail_first=1)
    with Backlog.open(tmp_path / "b") as backlog:
        backlog.add(requests(3))
        outcome = backlog.run(remote, planner(PACED), workers=3)
        rows = list(backlog.store.rows())
    assert outcome.counts.completed == 3 and all(r.retries == 1 and r.calls == 2 for r in rows)


def test_a_cap_over_a_day_holds_new_requests_back_even_across_restarts(tmp_path: Path) -> None:
    # The fake API allows 6 submissions a day at a 0.5 share: 3 a day.
    remote = Remote(polls=0)
    with Backlog.open(tmp_path / "b") as backlog:
        backlog.add(requests(5))
        first = backlog.run(remote, planner(MANIFEST), workers=4, wait=False)
    with Backlog.open(tmp_path / "b") as backlog:
        second = backlog.run(remote, planner(MANIFEST), workers=4, wait=False)
    assert (first.counts.completed, first.counts.new) == (3, 2)
    assert (second.counts.completed, second.counts.new) == (3, 2) and sum(remote.calls.values()) == 3


def test_a_stop_lets_the_steps_in_flight_finish_and_records_them(tmp_path: Path) -> None:
    gate = threading.Event()
    remote = Remote(polls=0, block=gate)
    stop = StopFlag()
    with Backlog.open(tmp_path / "b") as backlog:
        backlog.add(requests(10))
        threading.Timer(0.5, lambda: (stop.request(), gate.set())).start()
        outcome = backlog.run(remote, planner(PACED), workers=2, stop=stop)
        counts = backlog.store.counts()
    assert outcome.stopped and counts.completed == 2 and counts.new == 8 and counts.in_flight == 0


def test_the_sandbox_receives_one_request_per_id_nearest_due_date_first(tmp_path: Path) -> None:
    with Sandbox() as sb:
        sb.set_limits(dsr={"limit": 6000, "window_seconds": 60})
        config = {**sb.connector_config(), "polling": {"min_interval_seconds": 0.05, "max_interval_seconds": 1},
                  "throttle": {"limits": {"dsr": 80}}}
        handle = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}}).connector("mparticle")
        sb.set_durations(access=(0.05, 0.05), erasure=(0.05, 0.05))
        batch = requests(12, "deletion", tmp_path / "files")
        with Backlog.open(tmp_path / "b") as backlog:
            backlog.add(batch)
            outcome = backlog.run(handle.handle, planner(handle.manifest), workers=1)
        received = [d["group_id"] for d in sb.dsrs()]
    assert outcome.final and outcome.counts.completed == 12
    expected = [r.request_id for r in sorted(batch, key=lambda r: (r.due_at, r.request_id))]
    assert received == expected


def test_the_plan_counts_open_requests_by_their_declared_cost() -> None:
    open_requests: Open = Counter({("deletion", 1, False): 5, ("deletion", 1, True): 2})
    plan = plan_backlog(open_requests, MANIFEST)
    (budget,) = plan.budgets
    assert (plan.to_start, plan.under_way, budget.calls) == ({"deletion": 5}, {"deletion": 2}, 7.0)
    assert plan.binding is budget and plan.send_seconds == 2 * 86400  # 3 a day: days 0, 1 and 2


@pytest.mark.parametrize(("calls", "days"), [(1, 0), (3, 0), (4, 1), (6, 1), (7, 2)])
def test_a_cap_over_a_day_costs_whole_days(calls: int, days: int) -> None:
    plan = plan_backlog(Counter({("deletion", 1, False): calls}), MANIFEST)
    assert plan.send_seconds == days * 86400

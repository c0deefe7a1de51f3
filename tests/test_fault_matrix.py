"""500 mixed requests under every fault at once still reach the right final state, exactly once.

Faults on every API (seeded, so a run can be repeated): 20% 5xx, 10% connection resets, latency spikes past
the read timeout, 429 bursts, malformed JSON bodies, and responses lost after the sandbox processed the
request. The host loop is what a DSR platform does: call again with the state when pending, and again from
scratch (same request id) after a ``retry_later`` failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector_mparticle.sandbox import Durations, Sandbox
from connector_mparticle.sandbox.workspace import IdentityStrategy
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive
from dsr_framework.host import ConnectorHandle
from tests.support.hosting import mparticle

SEED = 20261129
FAULTS = {"error_rate": 0.2, "reset_rate": 0.1, "latency_ms": 1300, "latency_rate": 0.02, "malformed_rate": 0.05,
          "lost_response_rate": 0.05}
MIX = [("opt_out", True, 150), ("opt_out", False, 50), ("access", True, 100), ("access", False, 50),
       ("deletion", True, 100), ("deletion", False, 50)]


def host_loop(handle: ConnectorHandle, request: DsrRequest, deadline: float) -> tuple[Result, int, int]:
    """Drive one request to a final result the way a host does; returns (result, calls, host retries)."""
    calls = retries = 0
    started = time.time()

    def check(result: Result) -> None:
        trail = [(f"{e.at:%H:%M:%S.%f}"[:12], e.action, e.outcome) for e in result.audit[-6:]]
        assert time.time() - started < 120, f"{request.request_id} still {result.status} after 120s: {trail}"
        if result.status == "pending":
            assert result.next_check_at is not None
            wait = (result.next_check_at - datetime.now(UTC)).total_seconds()
            # Polling maximum 1 s here; a retry after an outage may add a capped backoff (30 s).
            assert wait <= 31, f"{request.request_id} was told to wait {wait:.0f}s: {result.message}"

    while True:
        driven = drive(lambda state: handle.handle(request, state), on_result=check)
        result, calls = driven.result, calls + driven.calls
        if result.error is not None and result.error.error_class == "retry_later" and time.time() < deadline:
            retries += 1  # the host retries the request itself, with the same request id and no state
            time.sleep(0.2)
        else:
            return result, calls, retries


@pytest.mark.slow
def test_500_mixed_requests_under_faults_reach_the_right_final_state(tmp_path: Path) -> None:
    fast = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
    # Access finds the profile itself; no login ids: the subjects are anonymous profiles known by email alone.
    with Sandbox(seed=SEED, durations=fast, include_live_profile=True, identity=IdentityStrategy(login_ids=())) as sb:
        high = {"limit": 1_000_000, "window_seconds": 1}
        sb.set_limits(dsr=high, dsr_submit=high, identity=high, events=high)
        jobs: list[tuple[DsrRequest, bool, str | None]] = []
        for kind, exists, count in MIX:
            for n in range(count):
                email = f"{kind}-{'known' if exists else 'unknown'}-{n}@example.com"
                mpid = str(sb.seed_profile({"email": email})["mpid"]) if exists else None
                request = DsrRequest(f"fm-{kind}-{exists}-{n}", kind, "ccpa", {"email": email},  # type: ignore[arg-type]
                                     datetime.now(UTC), str(tmp_path / f"{kind}-{n}"))
                jobs.append((request, exists, mpid))
        handle = mparticle(sb, timeouts={"connect": 1, "read": 1},
                           polling={"min_interval_seconds": 0.05, "max_interval_seconds": 1},
                           throttle={"max_retry_seconds": 8, "max_retry_after_seconds": 1,
                                     "limits": {"dsr": 1000, "identity": 1000, "events": 1000}})
        sb.set_faults(**{api: {**FAULTS, "force_429": 25, "retry_after": 1}
                         for api in ("dsr", "identity", "events", "results")})
        stop = threading.Event()

        def bursts() -> None:  # a fresh run of 429s on one API every 5 seconds
            apis = ["dsr", "identity", "events"]
            turn = 0
            while not stop.wait(5.0):
                sb.set_faults(**{apis[turn % 3]: {**FAULTS, "force_429": 5, "retry_after": 1}})
                turn += 1

        burster = threading.Thread(target=bursts, daemon=True)
        burster.start()
        deadline = time.time() + 240
        try:
            with ThreadPoolExecutor(max_workers=16) as pool:
                outcomes = list(pool.map(lambda job: host_loop(handle, job[0], deadline), jobs))
        finally:
            stop.set()
            burster.join(timeout=5)
            sb.clear_faults()
        log = sb.request_log()
        dsrs = sb.dsrs()
        profiles = {p["mpid"]: p for p in sb.find_profiles()}

    finals = Counter(result.status for result, _, _ in outcomes)
    faults = Counter("reset" if e.get("outcome", "").startswith("reset") else
                     "lost" if e.get("outcome", "").startswith("response lost") else
                     "malformed" if e.get("malformed") else str(e["status"]) for e in log)
    print(f"\nfault matrix (seed {SEED}): {len(jobs)} requests, {len(log)} HTTP requests at the sandbox; "
          f"5xx={sum(v for k, v in faults.items() if k.startswith('5'))} 429={faults['429']} resets={faults['reset']} "
          f"lost={faults['lost']} malformed={faults['malformed']}; hook calls={sum(c for _, c, _ in outcomes)}, "
          f"host retries={sum(r for _, _, r in outcomes)}; final: {dict(finals)}")

    failures = [(req.request_id, result.message) for (req, _, _), (result, _, _) in zip(jobs, outcomes, strict=True)
                if result.status != "completed"]
    assert not failures, failures[:5]
    assert not any(r.error and r.error.error_class == "internal" for r, _, _ in outcomes)
    per_request = Counter(d["group_id"] for d in dsrs)
    dsr_jobs = [req for req, _, _ in jobs if req.type != "opt_out"]
    assert {req.request_id: per_request[req.request_id] for req in dsr_jobs} == {
        req.request_id: 1 for req in dsr_jobs}, "exactly one OpenDSR request per host request id"
    for (request, exists, mpid), (result, _, _) in zip(jobs, outcomes, strict=True):
        if request.type == "opt_out" and exists:
            assert mpid in profiles and profiles[mpid]["event_batch_count"] == 1, "consent recorded exactly once"
            assert profiles[mpid]["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is True
        elif request.type == "deletion":
            assert result.summary["verified"] is True
            assert mpid not in profiles
        elif request.type == "access":
            assert result.summary["data_found"] is exists
        else:
            assert result.summary["profile_found"] is False
    assert faults["reset"] and faults["lost"] and faults["malformed"] and faults["429"], faults

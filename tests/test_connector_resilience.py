"""The connector under trouble: lost responses, throttling, outages, hostile results links, expired tokens."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from tests.support.hosting import drive, mparticle, request


def test_repeated_calls_with_the_same_request_id_create_one_opendsr_request(sandbox: Sandbox) -> None:
    sandbox.set_durations(erasure=(1, 1))
    handle = mparticle(sandbox)
    first = handle.handle(request("deletion"))
    again_without_state = handle.handle(request("deletion"))  # e.g. the host crashed before storing the state
    assert first.status == again_without_state.status == "pending"
    assert again_without_state.audit[0].outcome.startswith("already exists")
    result, _ = drive(handle, request("deletion"), state=dict(again_without_state.state or {}))
    assert result.status == "completed"
    assert len(sandbox.dsrs()) == 1


def test_a_response_lost_after_mparticle_processed_the_submission_does_not_duplicate_it(sandbox: Sandbox) -> None:
    sandbox.set_faults(dsr={"lost_response_rate": 1.0})
    handle = mparticle(sandbox, throttle={"max_retry_seconds": 0.5})
    lost = handle.handle(request("access"))
    assert lost.status == "failed" and lost.error is not None and lost.error.error_class == "retry_later"
    assert len(sandbox.dsrs()) >= 1  # mParticle did receive it (every retry's response was lost too)
    sandbox.clear_faults()
    result, _ = drive(handle, request("access"))
    assert result.status == "completed"
    assert len(sandbox.dsrs()) == 1
    posts = [e for e in sandbox.request_log(api="dsr") if e["method"] == "POST"]
    assert len(posts) >= 2 and posts[-1]["status"] == 400  # the resubmission was told "already exists"


def test_a_429_storm_is_waited_out_honouring_retry_after(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_faults(identity={"force_429": 3, "retry_after": 1})
    started = time.perf_counter()
    result = mparticle(sandbox).handle(request("opt_out"))
    elapsed = time.perf_counter() - started
    assert result.status == "completed"
    assert elapsed >= 3.0, "each 429 said Retry-After: 1"
    statuses = [e["status"] for e in sandbox.request_log(api="identity")]
    assert statuses == [429, 429, 429, 200]


def test_a_429_storm_longer_than_the_retry_budget_fails_as_retry_later(sandbox: Sandbox) -> None:
    sandbox.set_faults(identity={"force_429": 100, "retry_after": 5})
    handle = mparticle(sandbox, throttle={"max_retry_seconds": 2, "max_retry_after_seconds": 5})
    started = time.perf_counter()
    result = handle.handle(request("opt_out"))
    assert time.perf_counter() - started < 3
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class == "retry_later" and result.error.retry_after is not None
    assert result.error.retry_after > datetime.now(UTC)


def test_server_errors_are_retried_and_never_4xx(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    # seed 1: two 5xx on the identity search, then one on the events upload (seed 3 gave four in a row on each,
    # so the backoff alone took ~8 s)
    with Sandbox(seed=1) as flaky:
        flaky.seed_profile({"email": "jane@example.com"})
        flaky.set_faults(identity={"error_rate": 0.5}, events={"error_rate": 0.5})
        result = mparticle(flaky).handle(request("opt_out"))
        assert result.status == "completed"
        log = flaky.request_log()
        assert all(any(e["api"] == api and e["status"] >= 500 for e in log) for api in ("identity", "events"))
        assert [e["status"] for e in log if e["status"] < 500] == [200, 202]


def test_timeouts_are_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.set_faults(identity={"latency_ms": 700})
    handle = mparticle(sandbox, timeouts={"connect": 1, "read": 0.3}, throttle={"max_retry_seconds": 1.5})
    result = handle.handle(request("opt_out"))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"
    assert "timed out" in result.message
    attempts = int(re.search(r"after (\d+) attempt", result.message).group(1))  # type: ignore[union-attr]
    assert attempts >= 2
    time.sleep(0.8)  # the sandbox logs a request once its injected latency is over
    assert len(sandbox.request_log(api="identity")) == attempts


def test_status_outage_while_pending_keeps_the_state_and_checks_again(sandbox: Sandbox) -> None:
    handle = mparticle(sandbox, throttle={"max_retry_seconds": 0.5})
    first = handle.handle(request("deletion"))
    sandbox.set_faults(dsr={"error_rate": 1.0})
    during = handle.handle(request("deletion"), first.state)
    assert during.status == "pending" and during.state is not None
    assert [p["subject_request_id"] for p in during.state["parts"]] == [first.summary["subject_request_id"]]
    assert "could not be reached" in during.message
    sandbox.clear_faults()
    result, _ = drive(handle, request("deletion"), state=dict(during.state or {}))
    assert result.status == "completed" and len(sandbox.dsrs()) == 1


def test_a_results_url_on_a_foreign_host_is_refused_without_contacting_it(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_faults(dsr={"foreign_results_url": True})
    handle, req = mparticle(sandbox), request("access", output_dir=str(tmp_path))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    result = handle.handle(req, first.state)  # mParticle is done: only its results link is refused
    assert result.status == "pending" and result.state is not None
    assert "refused to download results" in result.message and "results.untrusted.example" in result.message
    assert list(tmp_path.iterdir()) == []
    assert not [e for e in sandbox.request_log() if e["path"].startswith("/dsr-results/")]


def test_an_expired_results_link_fails_saying_so(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_durations(results_ttl_seconds=0.0)
    result, _ = drive(mparticle(sandbox), request("access", output_dir=str(tmp_path)))
    assert result.status == "failed" and "expired" in result.message
    assert result.message.startswith("mParticle completed the access request")  # what mParticle did, first
    assert "under a new request id" in result.message  # the same id would find the same expired link
    assert result.error is not None and result.error.error_class == "rejected"


def test_a_cancelled_request_fails_with_the_reason(sandbox: Sandbox) -> None:
    sandbox.set_durations(erasure=(30, 30))
    handle = mparticle(sandbox)
    first = handle.handle(request("deletion"))
    sandbox.force_status(first.summary["subject_request_id"], "cancelled")
    result = handle.handle(request("deletion"), first.state)
    assert result.status == "failed" and "cancelled in mParticle" in result.message


def test_an_identical_request_already_in_progress_is_reported_clearly(sandbox: Sandbox) -> None:
    sandbox.set_durations(erasure=(30, 30))
    handle = mparticle(sandbox)
    assert handle.handle(request("deletion", request_id="host-a")).status == "pending"
    other = handle.handle(request("deletion", request_id="host-b"))
    assert other.status == "failed" and other.error is not None and other.error.error_class == "retry_later"
    assert "already has an identical erasure request in progress" in other.message
    assert len(sandbox.dsrs()) == 1


def test_a_revoked_oauth_token_is_replaced_once(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = mparticle(sandbox, oauth=True)
    assert handle.handle(request("opt_out")).status == "completed"
    sandbox.revoke_tokens()
    assert handle.handle(request("opt_out", request_id="host-2")).status == "completed"
    token_calls = [e for e in sandbox.request_log(api="oauth")]
    assert len(token_calls) == 2
    identity_statuses = [e["status"] for e in sandbox.request_log(api="identity")]
    assert identity_statuses == [200, 401, 200]


def test_wrong_oauth_client_is_an_authentication_failure(sandbox: Sandbox) -> None:
    config = sandbox.connector_config(oauth=True)
    config["dsr"]["auth"]["client_secret"] = "not-the-client-secret"
    result = mparticle(sandbox, dsr=config["dsr"]).handle(request("access"))
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class == "authentication" and "OAuth token endpoint refused" in result.message
    assert "not-the-client-secret" not in str(result.to_dict())


def test_invalid_configuration_is_a_configuration_failure_listing_every_problem(sandbox: Sandbox) -> None:
    from connector_mparticle import plugin

    config = sandbox.connector_config()
    config["dsr"]["base_url"] = "http://api.example.com"
    config["throttle"] = {"target_share": 2}
    config["dsr"]["auth"]["secret"] = "xy"
    result = plugin.handle_access(config=config, request=request(), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    for path in ("$.dsr.base_url", "$.throttle.target_share", "$.dsr.auth.secret"):
        assert path in result.message
    check = plugin.test_connection(config=config)
    assert not check.ok and check.checks[0].error_class == "configuration"


def test_request_without_a_usable_identifier_is_a_configuration_failure(sandbox: Sandbox) -> None:
    from dsr_framework import DsrRequest

    unknown = DsrRequest("r-9", "access", "gdpr", {"loyalty_card": "LC-1"}, datetime.now(UTC))
    result = mparticle(sandbox).handle(unknown)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert "loyalty_card" in result.message and "map it in the configuration's 'identities'" in result.message
    only_phone = DsrRequest("r-9", "access", "gdpr", {"phone": "+15550100"}, datetime.now(UTC))
    never = mparticle(sandbox, identities={"phone": None}).handle(only_phone)
    assert never.status == "failed" and "configured never to be sent" in never.message


def test_overdue_requests_are_checked_at_growing_intervals(sandbox: Sandbox) -> None:
    sandbox.set_durations(access=(0.1, 0.1), overrun_seconds=1.2)
    handle = mparticle(sandbox, polling={"min_interval_seconds": 0.1, "max_interval_seconds": 5})
    result, calls = drive(handle, request("access"))
    assert result.status == "completed"
    gets = [e["at"] for e in sandbox.request_log(api="dsr") if e["method"] == "GET" and "/requests/" in e["path"]]
    gaps = [b - a for a, b in itertools.pairwise(gets)]
    assert all(later >= earlier * 1.5 for earlier, later in itertools.pairwise(gaps)), gaps
    assert calls <= 6


def test_throttle_holds_the_connector_at_its_target_share_with_no_429(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_limits(identity={"limit": 20, "window_seconds": 1}, events={"limit": 20, "window_seconds": 1})
    handle = mparticle(sandbox, throttle={"limits": {"identity": 20, "events": 20}})
    started = time.perf_counter()
    for i in range(30):
        assert handle.handle(request("opt_out", request_id=f"r-{i}")).status == "completed"
    elapsed = time.perf_counter() - started
    log = sandbox.request_log(api="identity")
    assert all(e["status"] != 429 for e in sandbox.request_log())
    rate = len(log) / elapsed
    assert rate <= 20 * 0.75 * 1.1, f"{rate:.1f}/s is over the 15/s target"
    assert rate >= 20 * 0.75 * 0.8, f"{rate:.1f}/s wastes the budget"


def test_usage_reported_by_mparticle_slows_the_connector_when_another_client_spends_the_budget(
    sandbox: Sandbox,
) -> None:
    sandbox.set_limits(identity={"limit": 20, "window_seconds": 1, "external_share": 0.5})
    handle = mparticle(sandbox, throttle={"limits": {"identity": 20}})
    for i in range(40):
        handle.handle(request("opt_out", request_id=f"r-{i}", email=f"u{i}@example.com"))
    statuses = [e["status"] for e in sandbox.request_log(api="identity")]
    throttled = statuses.count(429)
    assert throttled <= 2, f"{throttled} x 429 of {len(statuses)}"
    assert statuses[-10:].count(429) == 0


@pytest.mark.parametrize("kind", ["access", "deletion", "opt_out"])
def test_every_result_is_json_serialisable_and_schema_valid(sandbox: Sandbox, kind: str) -> None:
    import json

    from dsr_framework.validation import framework_validator

    sandbox.seed_profile({"email": "jane@example.com"})
    handle = mparticle(sandbox)
    first = handle.handle(request(kind))
    document = json.loads(json.dumps(first.to_dict()))
    assert list(framework_validator("result").iter_errors(document)) == []


@pytest.mark.parametrize("trouble", [MemoryError, lambda: RuntimeError("can't start new thread")],
                         ids=["memory", "threads"])
def test_a_call_that_runs_out_of_memory_or_threads_keeps_the_pending_request_and_its_state(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, trouble: Any) -> None:
    """Re-attack: a status check of an erasure mParticle holds, stopped by MemoryError (under ``ulimit -v``) or
    by a thread that could not start (the DNS helper under a pids limit), ended ``failed/internal`` and the host
    lost the state. It now stays pending with the state it came with and says a person should look."""
    from requests.adapters import HTTPAdapter

    handle = mparticle(sandbox)
    first = handle.handle(request("deletion"))
    assert first.status == "pending" and first.state
    sandbox.force_status(first.summary["subject_request_id"], "pending")

    def out_of_something(*args: Any, **kwargs: Any) -> Any:
        raise trouble()

    monkeypatch.setattr(HTTPAdapter, "send", out_of_something)  # the transport seam: every call meets it
    kept = handle.handle(request("deletion"), dict(first.state))
    assert kept.status == "pending" and kept.state == first.state, kept.message
    assert kept.action_required is not None and kept.action_required.error_class == "internal"
    monkeypatch.undo()
    assert handle.handle(request("deletion"), dict(kept.state)).status == "pending"  # and it carries on
    assert len(sandbox.dsrs()) == 1

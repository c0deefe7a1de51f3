"""The sandbox's switches: rate limits, faults, the request log, HTTPS and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import INPUT, WORKSPACE, batch, dsr_body


def search(sb: Sandbox, session: requests.Session | None = None,
           email: str = "nobody@example.com") -> requests.Response:
    return (session or requests).post(f"{sb.url}/v1/search", auth=INPUT, timeout=5, json={
        "environment": "production", "known_identities": {"email": email}})


def test_speed_limit_answers_429_with_retry_after_and_reports_usage(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_limits(identity={"limit": 5, "window_seconds": 1})
    with requests.Session() as session:
        responses = [search(sandbox, session, "jane@example.com") for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
    assert [r.headers.get("X-mp-rate-limit-percentage-used") for r in responses[:5]] == ["20", "40", "60", "80",
                                                                                          "100"]
    throttled = responses[5]
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["X-mp-rate-limit-exceeded"] == "workspace"
    assert throttled.json()["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    time.sleep(1.05)
    assert search(sandbox).status_code == 404  # the window has moved on


def test_events_limit_counts_batches_not_requests(sandbox: Sandbox) -> None:
    sandbox.set_limits(events={"limit": 10, "window_seconds": 60})
    bulk = requests.post(f"{sandbox.url}/v2/bulkevents", json=[batch()] * 8, auth=INPUT, timeout=5)
    assert bulk.status_code == 202 and bulk.headers["X-mp-rate-limit-percentage-used"] == "80"
    over = requests.post(f"{sandbox.url}/v2/bulkevents", json=[batch()] * 3, auth=INPUT, timeout=5)
    assert over.status_code == 429 and over.headers["X-mp-rate-limit-exceeded"] == "account"


def test_another_clients_share_reduces_what_is_left(sandbox: Sandbox) -> None:
    sandbox.set_limits(identity={"limit": 10, "window_seconds": 60, "external_share": 0.5})
    codes = [search(sandbox).status_code for _ in range(7)]
    assert codes == [404] * 5 + [429] * 2


def test_dsr_limit_and_published_defaults(sandbox: Sandbox) -> None:
    limits = sandbox.limits()
    assert limits["dsr"]["limit"] == 1000 and limits["dsr"]["window_seconds"] == 60
    assert limits["dsr_submit"]["limit"] == 80000 and limits["events"]["limit"] == 270
    assert limits["profile"]["limit"] == 15 and "identity" not in limits  # mParticle publishes no IDSync limit
    sandbox.set_limits(dsr_submit={"limit": 1, "window_seconds": 86400})
    assert requests.post(f"{sandbox.url}/v3/requests", json=dsr_body(), auth=WORKSPACE, timeout=5).status_code == 201
    second = requests.post(f"{sandbox.url}/v3/requests", json=dsr_body(email="b@example.com"), auth=WORKSPACE,
                           timeout=5)
    assert second.status_code == 429 and second.json()["code"] == 429
    assert requests.get(f"{sandbox.url}/v3/requests/0", auth=WORKSPACE, timeout=5).status_code == 404


def test_forced_429_run_then_normal_service(sandbox: Sandbox) -> None:
    sandbox.set_faults(identity={"force_429": 2, "retry_after": 3})
    codes = [(r.status_code, r.headers.get("Retry-After")) for r in (search(sandbox) for _ in range(3))]
    assert codes == [(429, "3"), (429, "3"), (404, None)]


def test_server_errors_at_the_configured_rate_are_repeatable_with_a_seed() -> None:
    def run() -> list[int]:
        with Sandbox(seed=7) as sb:
            sb.set_faults(identity={"error_rate": 0.5})
            return [search(sb).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {500, 502, 503} & set(first) and 404 in first


def test_connection_resets_and_lost_responses(sandbox: Sandbox) -> None:
    sandbox.set_faults(identity={"reset_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        search(sandbox)
    sandbox.set_faults(identity={}, dsr={"lost_response_rate": 1.0})
    body = dsr_body()
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5)
    assert sandbox.dsr(body["subject_request_id"]) is not None  # processed, though the client never heard
    lost = [e for e in sandbox.request_log(api="dsr") if e.get("outcome")]
    assert lost[-1]["processed_status"] == 201


def test_malformed_bodies_and_latency(sandbox: Sandbox) -> None:
    sandbox.set_faults(dsr={"malformed_rate": 1.0})
    response = requests.get(f"{sandbox.url}/v3/discovery", timeout=5)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    sandbox.set_faults(dsr={}, identity={"latency_ms": 300})
    started = time.perf_counter()
    search(sandbox)
    assert time.perf_counter() - started >= 0.3
    with pytest.raises(requests.Timeout):
        requests.post(f"{sandbox.url}/v1/search", auth=INPUT, timeout=0.1,
                      json={"environment": "production", "known_identities": {"email": "a@b.co"}})


def test_results_url_on_a_foreign_host(sandbox: Sandbox) -> None:
    sandbox.set_faults(dsr={"foreign_results_url": True})
    body = dsr_body()
    requests.post(f"{sandbox.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5)
    sandbox.force_status(body["subject_request_id"], "completed")
    status = requests.get(f"{sandbox.url}/v3/requests/{body['subject_request_id']}", auth=WORKSPACE, timeout=5)
    assert status.json()["results_url"].startswith("https://results.untrusted.example/")


def test_request_log_counts_what_clients_sent_and_reset_forgets_everything(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    requests.get(f"{sandbox.url}/v3/discovery", timeout=5)
    mark = sandbox.request_log()[-1]["seq"]
    search(sandbox)
    requests.post(f"{sandbox.url}/v2/events", json=batch(), auth=INPUT, timeout=5)
    entries = sandbox.request_log(since=mark)
    assert [(e["method"], e["path"], e["api"], e["status"], e["client"]) for e in entries] == [
        ("POST", "/v1/search", "identity", 404, "input"), ("POST", "/v2/events", "events", 202, "input")]
    assert all(e["api"] != "admin" for e in sandbox.request_log())  # admin calls are not counted
    sandbox.set_faults(identity={"error_rate": 1.0})
    sandbox.reset()
    assert sandbox.find_profiles() == [] and sandbox.dsrs() == [] and sandbox.request_log() == []
    assert search(sandbox).status_code == 404  # faults are gone too


def test_unknown_routes_and_methods(sandbox: Sandbox) -> None:
    assert requests.get(f"{sandbox.url}/v9/nothing", timeout=5).status_code == 404
    assert requests.put(f"{sandbox.url}/v3/discovery", timeout=5).status_code == 405


def test_acceleration_limit_refuses_a_rate_that_rises_too_fast_and_reports_its_usage(sandbox: Sandbox) -> None:
    """guides/default-service-limits "API Throttling": acceleration limits how fast the rate may rise; its 429
    says ``acceleration`` and the 2xx usage header reports the greater of speed and acceleration usage."""
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_limits(identity={"limit": 100, "window_seconds": 1, "acceleration": 4})
    with requests.Session() as session:
        first = [search(sandbox, session, "jane@example.com") for _ in range(5)]
    assert [r.status_code for r in first] == [200] * 4 + [429]
    assert first[3].headers["X-mp-rate-limit-percentage-used"] == "100"  # 4 of 4 allowed by acceleration
    assert first[4].headers["X-mp-rate-limit-exceeded"] == "acceleration" and "Retry-After" not in first[4].headers
    time.sleep(1.05)  # the next window may take the previous window's 4, plus 4 more
    with requests.Session() as session:
        ramp = [search(sandbox, session, "jane@example.com").status_code for _ in range(9)]
    assert ramp == [200] * 8 + [429]


def test_https_sandbox_is_trusted_only_through_its_ca() -> None:
    with Sandbox(https=True) as sb:
        assert sb.url.startswith("https://127.0.0.1:")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sb.url}/v3/discovery", timeout=5)
        assert requests.get(f"{sb.url}/v3/discovery", timeout=5, verify=sb.ca_file).status_code == 200
        assert sb.connector_config()["trust_store"] == sb.ca_file


def test_sandbox_runs_as_a_module_from_the_command_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector_mparticle.sandbox", "--port", "0", "--json", "--limit", "identity=3/s",
         "--fault", "events.force_429=1"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        url = info["url"]
        assert info["workspace_key"] == "sbx-wk-7c2f9e4a"
        codes = [requests.post(f"{url}/v1/search", auth=INPUT, timeout=5, json={
            "environment": "production", "known_identities": {"email": "a@b.co"}}).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        assert requests.post(f"{url}/v2/events", json=batch(), auth=INPUT, timeout=5).status_code == 429
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0

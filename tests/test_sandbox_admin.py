"""The admin API refuses bodies of the wrong shape with 400 and names the problem; settings round-trip; a reset
brings back a freshly started sandbox."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox, SandboxAdminError
from tests.support.mp import INPUT, WORKSPACE, batch, dsr_body
from tests.support.receiver import callback_receiver


@pytest.mark.parametrize(("method", "path", "body", "problem"), [
    ("PUT", "/durations", {"access": {"pending": 1, "in_progress": 2}}, "'access' was unexpected"),
    ("PUT", "/durations", {"durations": {"access": [1, 2]}}, "$.durations.access"),
    ("PUT", "/durations", {"durations": {"portability": {"pending": 1, "in_progress": 2}}}, "'portability'"),
    ("PUT", "/durations", {"overrun_seconds": -1}, "$.overrun_seconds"),
    ("PUT", "/limits", {"identity": {"limit": 5, "per": "second"}}, "'per' was unexpected"),
    ("PUT", "/limits", {"shoe": {"limit": 5}}, "unknown limit 'shoe'"),
    ("PUT", "/limits", {"identity": 50}, "$.identity"),
    ("PUT", "/faults", {"dsr": {"explode": True}}, "unknown fault setting"),
    ("PUT", "/faults", {"dsr": {"error_rate": 3}}, "between 0 and 1"),
    ("PUT", "/faults", {"dsr": {"signature": "forged"}}, "signature must be one of"),
    ("PUT", "/faults", {"pigeon": {}}, "unknown API 'pigeon'"),
    ("PUT", "/workspace", {"gdpr_purposes": "marketing"}, "$.gdpr_purposes"),
    ("PUT", "/workspace", {"identity": {"login_ids": ["shoe_size"]}}, "unknown identity type 'shoe_size'"),
    ("PUT", "/workspace", {"identity": {"immutable_ids": ["email"]}}, "must also be login and unique ids"),
    ("PUT", "/workspace", {"oauth_apis": ["profile"]}, "$.oauth_apis[0]"),
    ("PUT", "/workspace", {"live_profile": True}, "'live_profile' was unexpected"),
    ("POST", "/profiles", {"identities": {"shoe_size": "9"}}, "unknown identity type 'shoe_size'"),
    ("POST", "/profiles", {"identities": {}}, "$.identities"),
    ("POST", "/profiles", {"email": "jane@example.com"}, "'identities' is a required property"),
    ("POST", "/dsrs/0/status", {"status": "done"}, "$.status"),
    ("POST", "/dsrs/0/status", [], "$: [] is not of type 'object'"),
])
def test_a_body_of_the_wrong_shape_is_refused_with_400_and_changes_nothing(
    sandbox: Sandbox, method: str, path: str, body: Any, problem: str
) -> None:
    before = (sandbox.durations(), sandbox.limits(), sandbox.faults(), sandbox.workspace())
    response = requests.request(method, f"{sandbox.url}/_sandbox{path}", json=body, timeout=5)
    assert response.status_code == 400 and problem in response.json()["error"]
    assert (sandbox.durations(), sandbox.limits(), sandbox.faults(), sandbox.workspace()) == before
    assert sandbox.find_profiles() == []


def test_a_unique_id_cannot_be_seeded_twice(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"customer_id": "c-1"})
    with pytest.raises(SandboxAdminError, match="unique id"):
        sandbox.seed_profile({"customer_id": "c-1", "email": "someone@example.com"})


def test_workspace_settings_round_trip_and_reset_restores_the_defaults(sandbox: Sandbox) -> None:
    defaults = sandbox.workspace()
    assert defaults["gdpr_purposes"] == [] and defaults["include_live_profile"] is False
    assert defaults["oauth_apis"] == [] and defaults["forwarding_partners"] == []
    assert defaults["identity"]["login_ids"] == ["customer_id"] and defaults["identity"]["immutable_ids"] == []
    assert defaults["identity"]["hierarchy"][:5] == ["customer_id", "mobile_number", "phone_number_2",
                                                     "phone_number_3", "email"]
    changed = sandbox.set_workspace(gdpr_purposes=["Marketing"], identity={"login_ids": ["customer_id", "email"]})
    assert changed["gdpr_purposes"] == ["marketing"] and changed["identity"]["login_ids"] == ["customer_id", "email"]
    assert sandbox.workspace() == changed
    sandbox.reset()
    assert sandbox.workspace() == defaults


def test_durations_set_through_the_typed_client_take_effect(sandbox: Sandbox) -> None:
    sandbox.set_durations(access=(3, 4), overrun_seconds=1.5)
    assert sandbox.durations()["durations"]["access"] == {"pending": 3, "in_progress": 4}
    assert sandbox.durations()["overrun_seconds"] == 1.5


def observed(sb: Sandbox) -> dict[str, Any]:
    """Everything the admin API shows of a sandbox's state."""
    return {"workspace": sb.workspace(), "limits": sb.limits(), "faults": sb.faults(), "durations": sb.durations(),
            "shapes": sb.shapes(), "profiles": sb.find_profiles(), "dsrs": sb.dsrs(), "stats": sb.stats(),
            "ignored_consent": sb.ignored_consent(), "log": sb.request_log(), "callbacks": sb.callbacks()}


def first_steps(sb: Sandbox) -> list[Any]:
    """What a test's first calls see: the mpid a new profile gets, seeded fault rolls, the log's numbering and
    the speed limit's usage."""
    mpid = sb.seed_profile({"email": "jane@example.com"})["mpid"]
    sb.set_faults(identity={"error_rate": 0.5})
    codes = [requests.post(f"{sb.url}/v1/search", auth=INPUT, timeout=5, json={
        "environment": "production", "known_identities": {"email": "jane@example.com"}}).status_code
        for _ in range(12)]
    usage = requests.get(f"{sb.url}/v3/discovery", timeout=5).status_code
    return [mpid, codes, [e["seq"] for e in sb.request_log()], usage]


def use_everything(sb: Sandbox, refused_url: str) -> str:
    """Change every part of the state a reset must undo; returns a token the sandbox issued."""
    sb.seed_profile({"email": "omar@example.com"}, audiences=["Spring sale"])
    consent = {"gdpr": {"undefined": {"consented": True, "timestamp_unixtime_ms": 1_700_000_000_000}}}
    assert requests.post(f"{sb.url}/v2/events", json=batch("ali@example.com", consent_state=consent), auth=INPUT,
                         timeout=5).status_code == 202
    sb.set_workspace(gdpr_purposes=["marketing"], oauth_apis=["dsr"])
    sb.set_limits(identity={"limit": 3, "window_seconds": 60})
    sb.set_faults(dsr={"signature": "missing"})
    sb.set_durations(access=(9, 9), overrun_seconds=2)
    sb.set_shapes(variation=True, seed=99)
    body = dsr_body(status_callback_urls=[refused_url])
    assert requests.post(f"{sb.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5).status_code == 201
    sb.force_status(body["subject_request_id"], "completed")  # a callback to a closed port: retried for ~1 s
    token = requests.post(f"{sb.url}/oauth/token", timeout=5, json={
        "client_id": sb.config.credentials.client_id, "client_secret": sb.config.credentials.client_secret,
        "grant_type": "client_credentials", "audience": sb.config.audience}).json()["access_token"]
    for _ in range(3):  # spend the identity limit
        requests.post(f"{sb.url}/v1/search", auth=INPUT, timeout=5, json={
            "environment": "production", "known_identities": {"email": "omar@example.com"}})
    return str(token)


def test_reset_brings_back_the_state_of_a_freshly_started_sandbox() -> None:
    """A sandbox shared between tests is reset between them: after a reset it must be indistinguishable from a
    new one of the same configuration (data, settings, tokens, the log's numbering, seeded fault rolls, mpids),
    and a callback queued before the reset is not recorded after it."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/cb"
    with closed, Sandbox(seed=11) as fresh, Sandbox(seed=11) as used, callback_receiver() as (url, received):
        expected = observed(fresh)
        token = use_everything(used, refused_url)
        used.reset()
        assert observed(used) == expected
        assert requests.get(f"{used.url}/v3/discovery", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).status_code == 200  # discovery needs no credentials; the token is gone:
        assert requests.post(f"{used.url}/v3/requests", json=dsr_body(), timeout=5,
                             headers={"Authorization": f"Bearer {token}"}).status_code == 401
        used.reset()
        assert first_steps(used) == first_steps(fresh)
        body = dsr_body(status_callback_urls=[url])  # sent after the dropped one, by the same sender thread
        requests.post(f"{used.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5)
        used.force_status(body["subject_request_id"], "completed")
        deadline = time.monotonic() + 10
        while (all(c["request_status"] != "completed" for c in used.callbacks())
               and time.monotonic() < deadline):
            time.sleep(0.02)
        assert used.callbacks() and {c["subject_request_id"] for c in used.callbacks()} == {body["subject_request_id"]}
        assert len(received) == len(used.callbacks())

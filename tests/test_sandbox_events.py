"""The sandbox's Events API v2: what a batch may hold, where it is stored, limits on size, and consent."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import CREDS, INPUT, WORKSPACE, batch


def upload(sb: Sandbox, body: Any, auth: Any = INPUT, path: str = "/v2/events") -> requests.Response:
    return requests.post(f"{sb.url}{path}", json=body, auth=auth, timeout=5)


def test_events_auth_missing_is_401_and_wrong_is_403(sandbox: Sandbox) -> None:
    assert upload(sandbox, batch(), auth=None).status_code == 401
    assert upload(sandbox, batch(), auth=(CREDS.input_key, "nope")).status_code == 403
    assert upload(sandbox, batch(), auth=WORKSPACE).status_code == 403


def test_batch_is_stored_on_a_new_or_existing_profile(sandbox: Sandbox) -> None:
    assert upload(sandbox, batch("new@example.com", user_attributes={"plan": "pro"})).status_code == 202
    [created] = sandbox.find_profiles(email="new@example.com")
    assert created["attributes"] == {"plan": "pro"} and created["event_batch_count"] == 1
    assert upload(sandbox, {"environment": "production", "mpid": int(created["mpid"]),
                            "deleted_user_attributes": ["plan"]}).status_code == 202
    after = sandbox.profile(created["mpid"])
    assert after is not None and after["attributes"] == {} and after["event_batch_count"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"environment": "staging"}, "$.environment"),
        ({"events": [{"event_type": "teleport", "data": {}}]}, "$.events[0].event_type"),
        ({"events": [{"event_type": "custom_event", "data": {"custom_event_type": "other"}}]}, "'event_name'"),
        ({"user_identities": {"emial": "typo@example.com"}}, "'emial' was unexpected"),
        ({"consent_state": {"ccpa": {"data_sale_opt_out": {"consented": True}}}}, "timestamp_unixtime_ms"),
        ({"consent_state": {"ccpa": {"do_not_track": {"consented": True, "timestamp_unixtime_ms": 1}}}},
         "'do_not_track' was unexpected"),
        ({"consent_state": {"gdpr": {"marketing": {"consented": "no", "timestamp_unixtime_ms": 1}}}}, "consented"),
        ({"mpid": "abc"}, "$.mpid"),
        ({"shoe_size": 9}, "'shoe_size' was unexpected"),
        ({"device_info": {"ios_idfv": 42}}, "$.device_info.ios_idfv"),
    ],
    ids=["environment", "event-type", "custom-event-name", "identity-typo", "consent-no-timestamp", "ccpa-purpose",
         "consent-type", "mpid", "unknown-field", "device-id-type"],
)
def test_malformed_batches_get_a_400_with_an_error_body(sandbox: Sandbox, body: dict[str, Any], message: str) -> None:
    response = upload(sandbox, {**batch(), **body})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "BAD_REQUEST" and message in error["message"]


#: Every event_type of the Events JSON schema (json-reference's table plus first_run, pre_attribution, profile,
#: push_reaction, user_attribute_change, user_identity_change), with the data fields json-reference requires.
EVENT_DATA = {
    "custom_event": {"event_name": "Clicked", "custom_event_type": "navigation"},
    "commerce_event": {"product_action": {"action": "purchase"}},
    "session_start": {}, "session_end": {"session_duration_ms": 1000}, "screen_view": {"screen_name": "Home"},
    "uninstall": {}, "crash_report": {"message": "boom"}, "opt_out": {"is_opted_out": True},
    "first_run": {}, "pre_attribution": {}, "push_registration": {"register": True, "registration_token": "tok"},
    "application_state_transition": {"application_transition_type": "application_initialized"},
    "push_message": {"push_message_type": "received"},
    "network_performance": {"url": "https://x", "response_code": 200},
    "breadcrumb": {"label": "step 1"}, "profile": {"profile_event_type": "login"}, "push_reaction": {},
    "user_attribute_change": {"user_attribute_name": "plan", "new": "pro", "old": None},
    "user_identity_change": {"new": {"identity_type": "email", "identity": "new@example.com",
                                     "timestamp_unixtime_ms": 1_700_000_000_000}, "old": None},
}


@pytest.mark.parametrize("event_type", sorted(EVENT_DATA))
def test_every_documented_event_type_is_accepted_and_stored(sandbox: Sandbox, event_type: str) -> None:
    body = batch(f"{event_type}@example.com", events=[{"event_type": event_type, "data": EVENT_DATA[event_type]}])
    assert upload(sandbox, body).status_code == 202
    [profile] = sandbox.find_profiles(email=f"{event_type}@example.com")
    stored = sandbox.profile(profile["mpid"])
    assert stored is not None and stored["batches"][0]["events"][0]["event_type"] == event_type


@pytest.mark.parametrize(("key", "canonical"), [
    ("alias", "alias"), ("facebook_custom_audience_id", "facebook_custom_audience_id"),
    ("customer_id", "customer_id"), ("customerid", "customer_id"), ("other_id_10", "other_id_10"),
    ("mobile_number", "mobile_number"), ("phone_number_3", "phone_number_3"), ("yahoo", "yahoo"),
])
def test_every_documented_user_identity_is_accepted_and_kept_on_the_profile(
    sandbox: Sandbox, key: str, canonical: str
) -> None:
    assert upload(sandbox, {"environment": "production", "user_identities": {key: "value-1"}}).status_code == 202
    [profile] = sandbox.find_profiles(**{canonical: "value-1"})
    assert profile["identities"] == {canonical: "value-1"} and profile["event_batch_count"] == 1


@pytest.mark.parametrize(("key", "canonical"), [
    ("roku_advertising_id", "roku_aid"), ("roku_publisher_id", "roku_publisher_id"),
    ("microsoft_advertising_id", "microsoft_aid"), ("microsoft_publisher_id", "microsoft_publisher_id"),
    ("fire_advertising_id", "fire_aid"), ("amp_id", "amp_id"), ("ios_idfv", "ios_idfv"),
])
def test_a_batch_identified_only_by_a_device_id_is_stored_not_dropped(
    sandbox: Sandbox, key: str, canonical: str
) -> None:
    body = {"environment": "production", "device_info": {key: "7c1f53a0-7e4e-4b36-9d9f-0d6f2d0e1a11"},
            "events": [{"event_type": "screen_view", "data": {"screen_name": "Home"}}]}
    assert upload(sandbox, body).status_code == 202
    [profile] = sandbox.find_profiles(**{canonical: "7c1f53a0-7e4e-4b36-9d9f-0d6f2d0e1a11"})
    assert profile["event_batch_count"] == 1
    assert sandbox.stats()["batches_stored"] == 1


def test_a_batch_with_no_identity_and_no_known_mpid_is_accepted_and_counted_as_unattributed(sandbox: Sandbox) -> None:
    assert upload(sandbox, {"environment": "production", "events": []}).status_code == 202
    assert sandbox.find_profiles() == [] and sandbox.stats()["batches_unattributed"] == 1


def _padded(size: int, email: str = "big@example.com") -> dict[str, Any]:
    body = batch(email, user_attributes={"blob": ""})
    body["user_attributes"]["blob"] = "x" * (size - len(json.dumps(body)))
    assert len(json.dumps(body)) == size
    return body


@pytest.mark.parametrize("path", ["/v2/events", "/v2/bulkevents"])
def test_the_256_kb_request_limit_is_the_same_on_both_paths_and_answered_with_400(sandbox: Sandbox, path: str) -> None:
    """guides/default-service-limits: "Whether using the /events or /bulkevents endpoint, the total request size
    must be under 256kb"; 128 KB per batch is the SDKs' limit, not the server's."""
    def send(size: int) -> requests.Response:
        body: Any = _padded(size if path == "/v2/events" else size - 2)
        return requests.post(f"{sandbox.url}{path}", data=json.dumps([body] if path != "/v2/events" else body),
                             auth=INPUT, timeout=5, headers={"Content-Type": "application/json"})

    assert send(200 * 1024).status_code == 202  # a 200 KB batch: over 128 KB, under the request limit
    refused = send(256 * 1024)
    assert refused.status_code == 400 and "256 KB" in refused.json()["errors"][0]["message"]
    assert sandbox.stats()["batches_stored"] == 1


def test_bulk_upload_accepts_up_to_100_batches_and_202s_even_when_one_is_bad(sandbox: Sandbox) -> None:
    batches = [batch(f"user{i}@example.com") for i in range(3)] + [{"environment": "staging"}]
    assert upload(sandbox, batches, path="/v2/bulkevents").status_code == 202
    assert len(sandbox.find_profiles()) == 3 and sandbox.stats()["batches_rejected"] == 1
    assert upload(sandbox, [batch()] * 101, path="/v2/bulkevents").status_code == 400


def test_historical_upload_processes_only_batches_whose_events_are_all_timestamped_and_older_than_72_hours(
    sandbox: Sandbox,
) -> None:
    old = int(time.time() * 1000) - 40 * 86_400_000
    fresh = int(time.time() * 1000) - 3600_000

    def timed(email: str, stamp: int | None) -> dict[str, Any]:
        data: dict[str, Any] = {"screen_name": "Home"}
        if stamp is not None:
            data["timestamp_unixtime_ms"] = stamp
        return batch(email, events=[{"event_type": "screen_view", "data": data}])

    batches = [timed("old@example.com", old), timed("fresh@example.com", fresh),
               timed("untimed@example.com", None), batch("empty@example.com", events=[])]
    assert upload(sandbox, batches, path="/v2/bulkevents/historical").status_code == 202
    [profile] = sandbox.find_profiles()
    assert profile["identities"] == {"email": "old@example.com"}
    stored = sandbox.profile(profile["mpid"])
    assert stored is not None and stored["batch_receipts"][0]["historical"] is True
    assert sandbox.stats()["historical_batches_not_processed"] == 3


def test_source_request_id_deduplicates_a_resend(sandbox: Sandbox) -> None:
    profile = sandbox.seed_profile({"email": "jane@example.com"})
    dedupe = str(uuid.uuid4())
    for _ in range(3):
        assert upload(sandbox, batch(source_request_id=dedupe)).status_code == 202
    stored = sandbox.profile(profile["mpid"])
    assert stored is not None and stored["event_batch_count"] == 1
    stats = sandbox.stats()
    assert (stats["batches_stored"], stats["duplicate_batches_ignored"]) == (1, 2)


def consent(purposes: dict[str, bool], ccpa: bool | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"gdpr": {p: {"consented": v, "timestamp_unixtime_ms": 1_700_000_000_000}
                                      for p, v in purposes.items()}}
    if ccpa is not None:
        state["ccpa"] = {"data_sale_opt_out": {"consented": ccpa, "timestamp_unixtime_ms": 1_700_000_000_000}}
    return state


def test_consent_for_an_undefined_gdpr_purpose_is_ignored_and_reported_by_the_admin_api(sandbox: Sandbox) -> None:
    """guides/data-privacy-controls: GDPR purposes must be defined in the workspace before use; CCPA's
    data_sale_opt_out exists once CCPA is enabled."""
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_workspace(gdpr_purposes=["Marketing"])
    body = batch(consent_state=consent({"marketing": False, "analytics": False}, ccpa=True))
    assert upload(sandbox, body).status_code == 202
    profile = sandbox.profile(jane["mpid"])
    assert profile is not None
    assert set(profile["consent_state"]["gdpr"]) == {"marketing"}
    assert profile["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is True
    assert [(e["purpose"], e["reason"]) for e in profile["ignored_consent"]] == [
        ("analytics", "purpose not defined in the workspace")]
    assert [(e["mpid"], e["purpose"]) for e in sandbox.ignored_consent()] == [(jane["mpid"], "analytics")]
    assert sandbox.stats()["consent_purposes_ignored"] == 1

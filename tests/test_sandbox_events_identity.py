"""The sandbox's Events v2, IDSync v1 and OAuth token endpoint, including mParticle's own Python SDK."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import CREDS, INPUT, WORKSPACE, batch, dsr_body


def upload(sb: Sandbox, body: Any, auth: Any = INPUT, path: str = "/v2/events") -> requests.Response:
    return requests.post(f"{sb.url}{path}", json=body, auth=auth, timeout=5)


def search(sb: Sandbox, known: dict[str, str], auth: Any = INPUT, **extra: Any) -> requests.Response:
    body = {"environment": "production", "known_identities": known, **extra}
    return requests.post(f"{sb.url}/v1/search", json=body, auth=auth, timeout=5)


def test_official_mparticle_sdk_uploads_consent_that_the_admin_api_reads_back(sandbox: Sandbox) -> None:
    mparticle = pytest.importorskip("mparticle")
    existing = sandbox.seed_profile({"email": "jane@example.com"})
    config = mparticle.Configuration()
    config.api_key, config.api_secret = CREDS.input_key, CREDS.input_secret
    config.host = f"{sandbox.url}/v2"
    sdk_batch = mparticle.Batch()
    sdk_batch.environment = "development"
    sdk_batch.user_identities = mparticle.UserIdentities(customerid="cust-123", email="jane@example.com")
    consent = mparticle.ConsentState()
    consent.ccpa = {"data_sale_opt_out": mparticle.CCPAConsentState(
        document="ccpa_v1", consented=True, timestamp_unixtime_ms=1700000000000, location="mparticle.test/signup",
        hardware_id="IDFA:a5d934n0")}
    consent.gdpr = {"location_collection": mparticle.GDPRConsentState(
        document="location_v4", consented=False, timestamp_unixtime_ms=1700000000000, location="web",
        hardware_id="IDFA:a5d934n0")}
    sdk_batch.consent_state = consent
    _, status_code, _ = mparticle.EventsApi(config).upload_events_with_http_info(sdk_batch)
    assert status_code == 202
    profile = sandbox.profile(existing["mpid"])
    assert profile is not None
    assert profile["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is True
    assert profile["consent_state"]["gdpr"]["location_collection"]["consented"] is False
    assert profile["identities"]["customer_id"] == "cust-123"  # the SDK spells it "customerid"


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
        ({"environment": "staging"}, "'environment'"),
        ({"events": [{"event_type": "teleport", "data": {}}]}, "event_type"),
        ({"user_identities": {"emial": "typo@example.com"}}, "unknown identity type 'emial'"),
        ({"consent_state": {"ccpa": {"data_sale_opt_out": {"consented": True}}}}, "timestamp_unixtime_ms"),
        ({"consent_state": {"ccpa": {"do_not_track": {"consented": True, "timestamp_unixtime_ms": 1}}}},
         "only allows the purpose 'data_sale_opt_out'"),
        ({"consent_state": {"gdpr": {"marketing": {"consented": "no", "timestamp_unixtime_ms": 1}}}}, "consented"),
        ({"mpid": "abc"}, "'mpid'"),
    ],
    ids=["environment", "event-type", "identity-typo", "consent-no-timestamp", "ccpa-purpose", "consent-type",
         "mpid"],
)
def test_malformed_batches_get_a_400_with_an_error_body(sandbox: Sandbox, body: dict[str, Any], message: str) -> None:
    response = upload(sandbox, {**batch(), **body})
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def test_invalid_json_and_oversized_requests_are_refused(sandbox: Sandbox) -> None:
    broken = requests.post(f"{sandbox.url}/v2/events", data=b"{", auth=INPUT, timeout=5)
    assert broken.status_code == 400 and broken.json()["errors"][0]["code"] == "BAD_REQUEST"
    huge = batch(user_attributes={f"a{i}": "x" * 3000 for i in range(100)})
    assert len(json.dumps(huge)) > 256 * 1024
    assert upload(sandbox, huge).status_code == 413


def test_bulk_upload_accepts_up_to_100_batches_and_202s_even_when_one_is_bad(sandbox: Sandbox) -> None:
    batches = [batch(f"user{i}@example.com") for i in range(3)] + [{"environment": "staging"}]
    assert upload(sandbox, batches, path="/v2/bulkevents").status_code == 202
    assert len(sandbox.find_profiles()) == 3
    assert upload(sandbox, [batch()] * 101, path="/v2/bulkevents").status_code == 400


def test_source_request_id_deduplicates_a_resend(sandbox: Sandbox) -> None:
    profile = sandbox.seed_profile({"email": "jane@example.com"})
    dedupe = str(uuid.uuid4())
    for _ in range(3):
        assert upload(sandbox, batch(source_request_id=dedupe)).status_code == 202
    stored = sandbox.profile(profile["mpid"])
    assert stored is not None and stored["event_batch_count"] == 1
    assert sandbox.stats() == {"dsrs": 0, "profiles": 1, "batches_stored": 1, "duplicate_batches_ignored": 2}


def test_identity_search_finds_a_profile_and_reports_only_matched_identities(sandbox: Sandbox) -> None:
    profile = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"})
    response = search(sandbox, {"email": "jane@example.com", "customerid": "someone-else"})
    assert response.status_code == 200
    body = response.json()
    assert body["mpid"] == profile["mpid"] and body["matched_identities"] == {"email": "jane@example.com"}
    assert body["is_ephemeral"] is False and body["is_logged_in"] is True
    assert 0 <= int(response.headers["X-mp-rate-limit-percentage-used"]) <= 100


def test_identity_search_without_a_match_is_a_404_not_found_error(sandbox: Sandbox) -> None:
    response = search(sandbox, {"email": "nobody@example.com"})
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "NOT_FOUND_ERROR", "message": "User Profile Not Found"}]}
    assert sandbox.find_profiles() == []  # search never creates a user


def test_login_id_profiles_are_not_matched_by_a_device_id_alone(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"customer_id": "c-9", "ios_idfa": "idfa-1"})
    assert search(sandbox, {"ios_idfa": "idfa-1"}).status_code == 404
    assert search(sandbox, {"ios_idfa": "idfa-1", "customerid": "c-9"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [({"known_identities": {"email": "a@b.co"}}, "'environment'"),
     ({"environment": "production", "known_identities": {}}, "'known_identities'"),
     ({"environment": "production", "known_identities": {"customer_id": "x"}}, "unknown identity type")],
    ids=["no-environment", "no-identities", "events-spelling"],
)
def test_identity_search_validation_errors(sandbox: Sandbox, body: dict[str, Any], message: str) -> None:
    response = requests.post(f"{sandbox.url}/v1/search", json=body, auth=INPUT, timeout=5)
    assert response.status_code == 400 and message in response.json()["errors"][0]["message"]


def test_identity_search_with_wrong_credentials_is_a_401(sandbox: Sandbox) -> None:
    assert search(sandbox, {"email": "a@b.co"}, auth=WORKSPACE).status_code == 401


def test_oauth_tokens_from_form_or_json_bodies_open_every_api(sandbox: Sandbox) -> None:
    form = requests.post(f"{sandbox.url}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": CREDS.client_id, "client_secret": CREDS.client_secret,
        "audience": "https://api.mparticle.com"})
    as_json = requests.post(f"{sandbox.url}/oauth/token", timeout=5, json={
        "grant_type": "client_credentials", "client_id": CREDS.client_id, "client_secret": CREDS.client_secret,
        "audience": "https://api.mparticle.com"})
    for response in (form, as_json):
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer" and response.json()["expires_in"] == 28800
    bearer = {"Authorization": f"Bearer {form.json()['access_token']}"}
    assert requests.post(f"{sandbox.url}/v3/requests", json=dsr_body(), headers=bearer, timeout=5).status_code == 201
    assert requests.post(f"{sandbox.url}/v2/events", json=batch(), headers=bearer, timeout=5).status_code == 202
    sandbox.expire_tokens()
    assert requests.post(f"{sandbox.url}/v2/events", json=batch(), headers=bearer, timeout=5).status_code == 403
    assert requests.get(f"{sandbox.url}/v3/requests/0", headers=bearer, timeout=5).status_code == 401


def test_oauth_refuses_wrong_clients_and_audiences(sandbox: Sandbox) -> None:
    base = {"grant_type": "client_credentials", "client_id": CREDS.client_id, "audience": "https://api.mparticle.com"}
    wrong = requests.post(f"{sandbox.url}/oauth/token", data={**base, "client_secret": "guess"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["error"] == "access_denied"
    other = requests.post(f"{sandbox.url}/oauth/token", timeout=5,
                          data={**base, "client_secret": CREDS.client_secret, "audience": "https://evil.example"})
    assert other.status_code == 403
    grant = requests.post(f"{sandbox.url}/oauth/token", data={**base, "grant_type": "password"}, timeout=5)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_requests_oauthlib_client_credentials_flow_works(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session

    monkeypatch.setitem(os.environ, "OAUTHLIB_INSECURE_TRANSPORT", "1")
    session = OAuth2Session(client=BackendApplicationClient(client_id=CREDS.client_id))
    token = session.fetch_token(token_url=f"{sandbox.url}/oauth/token", client_id=CREDS.client_id,
                                client_secret=CREDS.client_secret, include_client_id=True,
                                audience="https://api.mparticle.com")
    assert token["expires_in"] == 28800
    assert session.post(f"{sandbox.url}/v1/search", json={"environment": "production", "known_identities": {
        "email": "nobody@example.com"}}, timeout=5).status_code == 404

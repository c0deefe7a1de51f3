"""The Profile API: a profile by mpid or by immutable id, bearer tokens only, 15 requests/s, no documented 404."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import CREDS, INPUT, WORKSPACE, dsr_body

SCOPE = f"{CREDS.org_id}/{CREDS.account_id}/{CREDS.workspace_id}"
ALL_FIELDS = "device_identities,user_identities,user_attributes,audience_memberships,attribution"


@pytest.fixture
def bearer(sandbox: Sandbox) -> dict[str, str]:
    response = requests.post(f"{sandbox.url}/oauth/token", timeout=5, json={
        "grant_type": "client_credentials", "client_id": CREDS.client_id, "client_secret": CREDS.client_secret,
        "audience": "https://api.mparticle.com"})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def by_mpid(sb: Sandbox, headers: dict[str, str], mpid: Any, fields: str | None = ALL_FIELDS,
            method: str = "GET", scope: str = SCOPE) -> requests.Response:
    params = {"fields": fields} if fields is not None else {}
    return requests.request(method, f"{sb.url}/userprofile/v1/{scope}/{mpid}", params=params, headers=headers,
                            timeout=5)


def resolve(sb: Sandbox, headers: dict[str, str], kind: str, value: str) -> requests.Response:
    return requests.post(f"{sb.url}/userprofile/v1/resolve/{SCOPE}", params={"fields": "user_identities"},
                         headers=headers, timeout=5,
                         json={"environment_type": "production", "identity": {"type": kind, "value": value}})


def test_a_profile_by_mpid_has_the_documented_fields(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    jane = sandbox.seed_profile({"customer_id": "c-1", "email": "jane@example.com", "android_aaid": "gaid-1"},
                                attributes={"$firstname": "Jane"}, audiences=["Decor Remarketing"])
    for method in ("GET", "POST"):  # the page's heading says POST, its curl example GET
        response = by_mpid(sandbox, bearer, jane["mpid"], method=method)
        assert response.status_code == 200
        body = response.json()
        assert body["mpid"] == int(jane["mpid"]) and body["is_opted_out"] is False
        assert {"created_timestamp_ms", "last_stored_timestamp_ms"} <= set(body)
        assert body.get("limit_ad_tracking") is None  # null as in the sample, or absent under shape variation
        assert body["user_identities"] == [{"type": "customer_id", "encoding": "none", "value": "c-1"},
                                           {"type": "email", "encoding": "none", "value": "jane@example.com"}]
        assert body["device_identities"] == [{"type": "google_advertising_id", "encoding": "none", "value": "gaid-1"}]
        assert body["user_attributes"] == {"$firstname": "Jane"}
        assert [a["audience_name"] for a in body["audience_memberships"]] == ["Decor Remarketing"]
    only = by_mpid(sandbox, bearer, jane["mpid"], fields="user_attributes").json()
    assert "user_identities" not in only and only["user_attributes"] == {"$firstname": "Jane"}


@pytest.mark.parametrize(("fields", "scope"), [(None, SCOPE), ("", SCOPE), ("user_identities,shoe_size", SCOPE)])
def test_fields_are_required_and_limited_to_the_documented_ones(
    sandbox: Sandbox, bearer: dict[str, str], fields: str | None, scope: str
) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    response = by_mpid(sandbox, bearer, jane["mpid"], fields=fields, scope=scope)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "BAD_REQUEST"


def test_another_org_account_or_workspace_is_forbidden(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    for scope in (f"999/{CREDS.account_id}/{CREDS.workspace_id}", f"{CREDS.org_id}/{CREDS.account_id}/1"):
        assert by_mpid(sandbox, bearer, jane["mpid"], scope=scope).status_code == 403


def test_an_unknown_or_erased_mpid_is_a_400_unless_the_workspace_switch_says_404(
    sandbox: Sandbox, bearer: dict[str, str]
) -> None:
    """The page documents no 404, only "400: ... the requested profile is invalid"."""
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"})
    erasure = dsr_body("erasure", subject_identities={"controller_customer_id": {"value": "c-1", "encoding": "raw"}})
    requests.post(f"{sandbox.url}/v3/requests", json=erasure, auth=WORKSPACE, timeout=5)
    sandbox.force_status(erasure["subject_request_id"], "completed")
    for mpid in (jane["mpid"], "8000000000000000999"):
        gone = by_mpid(sandbox, bearer, mpid)
        assert gone.status_code == 400 and gone.json()["errors"][0]["code"] == "PROFILE_NOT_FOUND"
    sandbox.set_workspace(profile_not_found_status=404)
    assert by_mpid(sandbox, bearer, jane["mpid"]).status_code == 404
    assert by_mpid(sandbox, bearer, "not-a-number").status_code == 400


def test_resolve_finds_a_profile_by_an_immutable_id_only(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    jane = sandbox.seed_profile({"customer_id": "12345", "email": "jane@example.com"})
    refused = resolve(sandbox, bearer, "customer_id", "12345")  # the default strategy has no immutable id
    assert refused.status_code == 400 and "immutable" in refused.json()["errors"][0]["message"]
    sandbox.set_workspace(identity={"immutable_ids": ["customer_id"]})
    found = resolve(sandbox, bearer, "customer_id", "12345")
    assert found.status_code == 200 and found.json()["mpid"] == int(jane["mpid"])
    assert resolve(sandbox, bearer, "email", "jane@example.com").status_code == 400  # not immutable
    assert resolve(sandbox, bearer, "customer_id", "nobody").status_code == 400  # no such profile


def test_the_profile_api_is_limited_to_15_requests_per_second(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    assert sandbox.limits()["profile"] == {"limit": 15, "window_seconds": 1, "scope": "account",
                                           "external_share": 0.0, "acceleration": None}
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    with requests.Session() as session:
        codes = [session.get(f"{sandbox.url}/userprofile/v1/{SCOPE}/{jane['mpid']}", headers=bearer, timeout=5,
                             params={"fields": "user_attributes"}).status_code for _ in range(17)]
    assert codes.count(200) == 15 and codes[-1] == 429


def test_opt_out_events_and_device_state_show_in_the_profile(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    body = {"environment": "production", "user_identities": {"email": "opt@example.com"},
            "device_info": {"limit_ad_tracking": True},
            "events": [{"event_type": "opt_out", "data": {"is_opted_out": True}}]}
    assert requests.post(f"{sandbox.url}/v2/events", json=body, auth=INPUT, timeout=5).status_code == 202
    [profile] = sandbox.find_profiles(email="opt@example.com")
    answer = by_mpid(sandbox, bearer, profile["mpid"]).json()
    assert answer["is_opted_out"] is True and answer["limit_ad_tracking"] is True


def test_an_install_attribution_event_is_stored_on_the_profile(sandbox: Sandbox, bearer: dict[str, str]) -> None:
    """json-reference "Attribution custom events": custom_event_type attribution, event_name attribution; the
    publisher and campaign "is stored on the user's profile" (re-engagement attribution is not)."""
    def attribution(name: str, campaign: str) -> dict[str, Any]:
        return {"event_type": "custom_event", "data": {
            "event_name": name, "custom_event_type": "attribution", "timestamp_unixtime_ms": 1_700_000_000_000,
            "custom_attributes": {"publisher": "ad-network", "campaign": campaign}}}

    body = {"environment": "production", "user_identities": {"email": "installer@example.com"},
            "events": [attribution("attribution", "spring"), attribution("re-engagement", "autumn")]}
    assert requests.post(f"{sandbox.url}/v2/events", json=body, auth=INPUT, timeout=5).status_code == 202
    [profile] = sandbox.find_profiles(email="installer@example.com")
    answer = by_mpid(sandbox, bearer, profile["mpid"], fields="attribution").json()
    assert [(a["publisher"], a["campaign"]) for a in answer["attribution"]] == [("ad-network", "spring")]

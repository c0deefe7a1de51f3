"""The sandbox's IDSync v1: search, identify, login, logout and modify, with every documented identity key."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import CREDS, INPUT, WORKSPACE


def idsync(sb: Sandbox, path: str, known: dict[str, Any], auth: Any = INPUT, **extra: Any) -> requests.Response:
    body = {"environment": "production", "known_identities": known, **extra}
    return requests.post(f"{sb.url}/v1/{path}", json=body, auth=auth, timeout=5)


def search(sb: Sandbox, known: dict[str, Any], **extra: Any) -> requests.Response:
    return idsync(sb, "search", known, **extra)


def modify(sb: Sandbox, mpid: str, *changes: tuple[str, str | None, str | None]) -> requests.Response:
    body = {"environment": "production", "identity_changes": [
        {"identity_type": kind, "old_value": old, "new_value": new} for kind, old, new in changes]}
    return requests.post(f"{sb.url}/v1/{mpid}/modify", json=body, auth=INPUT, timeout=5)


def test_identity_search_finds_a_profile_and_reports_only_matched_identities(sandbox: Sandbox) -> None:
    profile = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"})
    response = search(sandbox, {"email": "jane@example.com", "customerid": "c-1", "other": "not-on-the-profile"})
    assert response.status_code == 200
    body = response.json()
    assert body["mpid"] == profile["mpid"]
    assert body["matched_identities"] == {"email": "jane@example.com", "customerid": "c-1"}
    # is_logged_in is not in the page (mParticle's SDKs read it); under shape variation it may be absent
    assert body["is_ephemeral"] is False and body.get("is_logged_in", True) is True


def test_identity_search_without_a_match_is_a_404_not_found_error(sandbox: Sandbox) -> None:
    response = search(sandbox, {"email": "nobody@example.com"})
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "NOT_FOUND_ERROR", "message": "User Profile Not Found"}]}
    assert sandbox.find_profiles() == []  # search never creates a user


def test_a_profile_with_a_login_id_is_returned_only_to_a_request_with_a_matching_login_id(sandbox: Sandbox) -> None:
    """guides/idsync/user-data "Login IDs"; the default strategy's login id is the customer id."""
    sandbox.seed_profile({"customer_id": "c-9", "email": "nine@example.com", "ios_idfa": "idfa-1"})
    assert search(sandbox, {"ios_idfa": "idfa-1"}).status_code == 404
    assert search(sandbox, {"email": "nine@example.com"}).status_code == 404
    assert search(sandbox, {"ios_idfa": "idfa-1", "customerid": "c-9"}).status_code == 200
    sandbox.set_workspace(identity={"login_ids": ["customer_id", "email"]})
    assert search(sandbox, {"email": "nine@example.com"}).status_code == 200  # any one login id is enough


#: known_identities keys: identity-swagger.yaml, plus those mParticle's Android and web SDKs send.
KNOWN_KEYS = ["customerid", "email", "other", *(f"other{n}" for n in range(2, 11)), "mobile_number",
              "phone_number_2", "phone_number_3", "alias", "facebook", "facebookcustomaudienceid", "google",
              "microsoft", "twitter", "yahoo", "ios_idfa", "ios_idfv", "android_aaid", "android_uuid", "push_token",
              "fire_aid", "roku_aid", "roku_publisher_id", "amp_id", "device_application_stamp"]


@pytest.mark.parametrize("key", KNOWN_KEYS)
def test_every_documented_and_sdk_known_identity_key_is_accepted(sandbox: Sandbox, key: str) -> None:
    assert search(sandbox, {key: "value-1"}).status_code == 404
    created = idsync(sandbox, "identify", {key: "value-1"})
    assert created.status_code == 200 and created.json()["matched_identities"] == {key: "value-1"}
    found = search(sandbox, {key: "value-1"})
    assert found.status_code == 200 and found.json()["mpid"] == created.json()["mpid"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({"known_identities": {"email": "a@b.co"}}, "'environment'"),
     ({"environment": "production", "known_identities": {}}, "$.known_identities"),
     ({"environment": "production", "known_identities": {"customer_id": "x"}}, "unknown identity type"),
     ({"environment": "production", "known_identities": {"mpid": "1"}}, "unknown identity type"),
     ({"environment": "production", "known_identities": {"email": None}}, "at least one identity"),
     ({"environment": "production", "known_identities": {"email": ""}}, "$.known_identities.email"),
     ({"environment": "staging", "known_identities": {"email": "a@b.co"}}, "$.environment")],
    ids=["no-environment", "no-identities", "events-spelling", "mpid", "only-null", "empty-value", "environment"],
)
def test_identity_search_validation_errors(sandbox: Sandbox, body: dict[str, Any], message: str) -> None:
    response = requests.post(f"{sandbox.url}/v1/search", json=body, auth=INPUT, timeout=5)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BAD_REQUEST" and message in response.json()["errors"][0]["message"]


def test_requests_as_mparticle_sdks_send_them_are_accepted(sandbox: Sandbox) -> None:
    """The web SDK sends previous_mpid and context as null and null for identities it dropped; the Android SDK
    sends previous_mpid as a number (mparticle-web-sdk src/identity.js, mparticle-android-sdk
    MParticleIdentityClientImpl.java)."""
    sdk = {"client_sdk": {"platform": "web", "sdk_vendor": "mparticle", "sdk_version": "2.71.2"}, "context": None,
           "request_id": "9f1c", "request_timestamp_ms": 1_764_000_000_000}
    first = idsync(sandbox, "identify", {"email": "web@example.com", "customerid": None,
                                         "device_application_stamp": "das-1"}, previous_mpid=None, **sdk)
    assert first.status_code == 200
    again = idsync(sandbox, "login", {"email": "web@example.com"}, previous_mpid=int(first.json()["mpid"]), **sdk)
    assert again.status_code == 200 and again.json()["mpid"] == first.json()["mpid"]


def test_identify_login_and_logout_follow_the_profile_conversion_flow(sandbox: Sandbox) -> None:
    """guides/idsync/profile-conversion-strategy "Identity flow", step by step."""
    sandbox.set_shapes(variation=False)  # is_logged_in (undocumented) may be absent under shape variation
    launch = idsync(sandbox, "identify", {"ios_idfv": "9876"}).json()
    assert launch["is_logged_in"] is False
    login = idsync(sandbox, "login", {"customerid": "ABC123", "email": "ed.hyde@example.com", "ios_idfv": "9876"})
    assert login.json()["mpid"] == launch["mpid"] and login.json()["is_logged_in"] is True  # the profile converts
    logout = idsync(sandbox, "logout", {"ios_idfv": "9876"}).json()
    assert logout["mpid"] != launch["mpid"]  # the device alone cannot reach the logged-in profile: a new one
    back = idsync(sandbox, "login", {"customerid": "ABC123", "email": "ed.hyde@example.com", "ios_idfv": "9876"})
    assert back.json()["mpid"] == launch["mpid"]  # the customer id outranks the anonymous profile's device id
    assert len(sandbox.find_profiles()) == 2


def test_read_only_identify_changes_nothing(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/v1/identify", params={"read_only": "true"}, auth=INPUT, timeout=5,
                             json={"environment": "production", "known_identities": {"email": "ro@example.com"}})
    assert response.status_code == 404 and sandbox.find_profiles() == []


def test_modify_adds_changes_and_removes_identities_of_an_existing_profile(sandbox: Sandbox) -> None:
    jane = sandbox.seed_profile({"customer_id": "c-1", "email": "old@example.com"})
    response = modify(sandbox, jane["mpid"], ("email", "old@example.com", "new@example.com"),
                      ("other", None, "o-1"), ("customerid", "c-1", "c-1"))
    assert response.status_code == 200
    assert response.json()["change_results"][0] == {"identity_type": "email", "modified_mpid": jane["mpid"]}
    profile = sandbox.profile(jane["mpid"])
    assert profile is not None and profile["identities"] == {"customer_id": "c-1", "email": "new@example.com",
                                                             "other": "o-1"}
    assert modify(sandbox, jane["mpid"], ("other", "o-1", None)).status_code == 200
    assert "other" not in sandbox.profile(jane["mpid"])["identities"]  # type: ignore[index]


def test_modify_moves_a_unique_id_and_refuses_to_change_an_immutable_one(sandbox: Sandbox) -> None:
    """guides/idsync/user-data "Unique IDs" (the other profile loses it) and "Immutable IDs"."""
    sandbox.set_workspace(identity={"unique_ids": ["customer_id", "email"], "immutable_ids": ["customer_id"]})
    first = sandbox.seed_profile({"customer_id": "c-1", "email": "ed.hyde@example.com"})
    second = sandbox.seed_profile({"email": "h.jekyll.md@example.com"})
    moved = modify(sandbox, first["mpid"], ("email", "ed.hyde@example.com", "h.jekyll.md@example.com"))
    assert moved.status_code == 200
    assert sandbox.profile(second["mpid"])["identities"] == {}  # type: ignore[index]  # orphaned
    assert search(sandbox, {"email": "h.jekyll.md@example.com", "customerid": "c-1"}).json()["mpid"] == first["mpid"]
    refused = modify(sandbox, first["mpid"], ("customerid", "c-1", "c-2"))
    assert refused.status_code == 400 and "immutable" in refused.json()["errors"][0]["message"]
    assert modify(sandbox, "12345", ("email", None, "x@example.com")).status_code == 400  # no such mpid


def test_identity_search_with_wrong_credentials_is_a_401(sandbox: Sandbox) -> None:
    assert idsync(sandbox, "search", {"email": "a@b.co"}, auth=WORKSPACE).status_code == 401


# -- HMAC digest and key-only authentication (developers/idsync/http-api "Authentication") -----------------------

IDENTIFY_BODY = (b'{"client_sdk":{"platform":"android","sdk_vendor":"mparticle","sdk_version":"5.0.0"},'
                 b'"environment":"development","request_timestamp_ms":1499875715564,'
                 b'"request_id":"ad58a7c1-cf35-4be5-8c42-a09989f85cc1","known_identities":{"android_uuid":"f924f1e5707b34b7"}}')


def signed(sb: Sandbox, *, secret: str = CREDS.input_secret, key: str = CREDS.input_key, path: str = "/v1/identify",
           body: bytes = IDENTIFY_BODY, signed_body: bytes | None = None, date: str | None = "20170712T224127Z",
           signed_date: str | None = None, signed_path: str | None = None, upper: bool = False) -> requests.Response:
    """A request signed as the page says: hex HMAC-SHA256, keyed with the UTF-8 secret, over
    METHOD \\n DATE \\n PATH + BODY (computed here, independently of the sandbox)."""
    message = f"POST\n{signed_date or date}\n{signed_path or path}".encode() + (
        body if signed_body is None else signed_body)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    headers = {"x-mp-key": key, "x-mp-signature": digest.upper() if upper else digest,
               "Content-Type": "application/json"}
    if date is not None:
        headers["Date"] = date
    return requests.post(f"{sb.url}{path}", data=body, headers=headers, timeout=5)


@pytest.mark.parametrize("upper", [False, True], ids=["lower-hex", "upper-hex"])
def test_a_correctly_signed_hmac_request_is_accepted(sandbox: Sandbox, upper: bool) -> None:
    response = signed(sandbox, upper=upper)
    assert response.status_code == 200, response.text
    assert sandbox.find_profiles(android_uuid="f924f1e5707b34b7")[0]["mpid"] == response.json()["mpid"]
    assert sandbox.request_log(api="identity")[-1]["client"] == "input"


@pytest.mark.parametrize("wrong", [
    {"secret": "not-the-secret"}, {"key": "another-key"}, {"signed_body": IDENTIFY_BODY.replace(b"f924", b"0000")},
    {"signed_date": "20170712T224128Z"}, {"date": None}, {"date": "yesterday", "signed_date": "yesterday"},
    {"path": "/v1/search", "signed_path": "/v1/identify"},
], ids=["secret", "key", "body", "date", "no-date", "date-format", "path"])
def test_a_wrongly_signed_hmac_request_is_refused_with_401(sandbox: Sandbox, wrong: dict[str, Any]) -> None:
    response = signed(sandbox, **wrong)
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert sandbox.find_profiles() == []


def test_api_key_only_authentication_is_off_by_default_and_a_workspace_setting(sandbox: Sandbox) -> None:
    def key_only() -> int:
        return requests.post(f"{sandbox.url}/v1/identify", data=IDENTIFY_BODY, timeout=5,
                             headers={"x-mp-key": CREDS.input_key, "Content-Type": "application/json"}).status_code

    assert key_only() == 401
    sandbox.set_workspace(idsync_key_only=True)
    assert key_only() == 200


def test_the_events_api_takes_no_hmac_digest(sandbox: Sandbox) -> None:
    body = b'{"environment":"production","user_identities":{"email":"jane@example.com"}}'
    digest = hmac.new(CREDS.input_secret.encode(), b"POST\n20170712T224127Z\n/v2/events" + body,
                      hashlib.sha256).hexdigest()
    response = requests.post(f"{sandbox.url}/v2/events", data=body, timeout=5, headers={
        "x-mp-key": CREDS.input_key, "x-mp-signature": digest, "Date": "20170712T224127Z"})
    assert response.status_code == 401

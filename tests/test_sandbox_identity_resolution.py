"""Identity resolution, the same for Events batches, IDSync and DSRs: login and unique ids decide the profile,
conflicting people stay apart, and device ids alone never reach a known (login-id) profile."""

from __future__ import annotations

from typing import Any

import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import INPUT, WORKSPACE, dsr_body


def send(sb: Sandbox, user: dict[str, str], device: dict[str, str] | None = None, name: str = "Opened") -> None:
    body: dict[str, Any] = {"environment": "production", "user_identities": user,
                            "events": [{"event_type": "custom_event",
                                        "data": {"event_name": name, "custom_event_type": "other"}}]}
    if device:
        body["device_info"] = device
    assert requests.post(f"{sb.url}/v2/events", json=body, auth=INPUT, timeout=5).status_code == 202


def search(sb: Sandbox, known: dict[str, str]) -> requests.Response:
    return requests.post(f"{sb.url}/v1/search", auth=INPUT, timeout=5,
                         json={"environment": "production", "known_identities": known})


def events_of(sb: Sandbox, mpid: str) -> list[str]:
    profile = sb.profile(mpid)
    assert profile is not None
    return [b["events"][0]["data"]["event_name"] for b in profile["batches"]]


def test_a_person_who_shares_only_a_phone_number_with_another_keeps_their_own_profile(sandbox: Sandbox) -> None:
    """The phone number is shared (a household), the emails differ: two people, two profiles."""
    send(sandbox, {"email": "alice@example.com", "mobile_number": "+15550100"}, name="Alice")
    send(sandbox, {"email": "bob@example.com", "mobile_number": "+15550100"}, name="Bob")
    alice = search(sandbox, {"email": "alice@example.com"}).json()["mpid"]
    bob = search(sandbox, {"email": "bob@example.com"}).json()["mpid"]
    assert alice != bob
    assert events_of(sandbox, alice) == ["Alice"] and events_of(sandbox, bob) == ["Bob"]
    body = dsr_body("erasure", email="bob@example.com")
    requests.post(f"{sandbox.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5)
    sandbox.force_status(body["subject_request_id"], "completed")
    assert sandbox.profile(bob) is None and sandbox.profile(alice) is not None  # erasing Bob spares Alice


def test_with_the_unique_ids_conflict_rule_only_unique_ids_separate_people(sandbox: Sandbox) -> None:
    sandbox.set_workspace(identity={"conflicts": "unique_ids"})
    send(sandbox, {"email": "alice@example.com", "mobile_number": "+15550100"})
    send(sandbox, {"email": "bob@example.com", "mobile_number": "+15550100"})
    assert len(sandbox.find_profiles()) == 1  # the shared phone number matches; email is not unique


def test_a_different_login_id_makes_a_separate_profile_even_when_other_identities_match(sandbox: Sandbox) -> None:
    """Login ids identify "one, and only one, MPID" (guides/idsync/user-data)."""
    send(sandbox, {"customer_id": "c-1", "email": "shared@example.com"}, name="first")
    send(sandbox, {"customer_id": "c-2", "email": "shared@example.com"}, name="second")
    first = search(sandbox, {"customerid": "c-1"}).json()["mpid"]
    second = search(sandbox, {"customerid": "c-2"}).json()["mpid"]
    assert first != second and events_of(sandbox, first) == ["first"] and events_of(sandbox, second) == ["second"]


def test_a_matching_login_id_decides_the_profile_when_other_values_changed(sandbox: Sandbox) -> None:
    send(sandbox, {"customer_id": "c-1", "email": "old@example.com"}, name="before")
    send(sandbox, {"customer_id": "c-1", "email": "new@example.com"}, name="after")
    [profile] = sandbox.find_profiles()
    assert events_of(sandbox, profile["mpid"]) == ["before", "after"]
    assert profile["identities"]["email"] == "old@example.com"  # values change through /modify, not batches


def test_device_ids_alone_never_attach_data_to_a_login_id_profile(sandbox: Sandbox) -> None:
    known = sandbox.seed_profile({"customer_id": "c-1", "ios_idfa": "idfa-1"})
    send(sandbox, {}, device={"ios_advertising_id": "idfa-1"}, name="anonymous")
    assert sandbox.profile(known["mpid"])["event_batch_count"] == 0  # type: ignore[index]
    anonymous = [p for p in sandbox.find_profiles(ios_idfa="idfa-1") if p["mpid"] != known["mpid"]]
    assert len(anonymous) == 1 and "customer_id" not in anonymous[0]["identities"]
    send(sandbox, {}, device={"ios_advertising_id": "idfa-1"}, name="again")  # joins the anonymous profile
    assert events_of(sandbox, anonymous[0]["mpid"]) == ["anonymous", "again"]


def test_an_anonymous_profile_converts_when_a_login_id_first_arrives(sandbox: Sandbox) -> None:
    send(sandbox, {}, device={"ios_idfv": "9876"}, name="browse")
    send(sandbox, {"customer_id": "ABC123"}, device={"ios_idfv": "9876"}, name="signup")
    [profile] = sandbox.find_profiles()
    assert profile["identities"] == {"ios_idfv": "9876", "customer_id": "ABC123"}
    assert events_of(sandbox, profile["mpid"]) == ["browse", "signup"]


def test_the_identity_hierarchy_breaks_ties_between_profiles(sandbox: Sandbox) -> None:
    """guides/idsync/components "Identity priorities", the first example."""
    one = sandbox.seed_profile({"email": "h.jekyll.md@example.com", "ios_idfv": "1234", "other": "AAAA"})
    sandbox.seed_profile({"email": "h.jekyll.md@example.com", "android_aaid": "2345", "other": "BBBB"})
    sandbox.set_workspace(identity={"conflicts": "unique_ids"})
    found = search(sandbox, {"email": "h.jekyll.md@example.com", "other": "AAAA", "ios_idfv": "2345"})
    assert found.json()["mpid"] == one["mpid"]


def test_an_immutable_id_protects_a_profile_like_a_login_id(sandbox: Sandbox) -> None:
    sandbox.set_workspace(identity={"login_ids": ["customer_id", "email"], "immutable_ids": ["customer_id"]})
    sandbox.seed_profile({"customer_id": "c-1", "email": "jane@example.com"})
    assert search(sandbox, {"email": "jane@example.com"}).status_code == 404
    assert search(sandbox, {"email": "jane@example.com", "customerid": "c-1"}).status_code == 200

"""Identity resolution, the same for Events batches, IDSync and DSRs, by the documented algorithm.

``guides/idsync/components``: "mParticle looks up matching profiles for each identifier in the order defined by
the identity priority until a single profile can be returned"; ``guides/idsync/user-data``: login ids protect
known profiles, and under an immutable-id strategy a search that matches no known immutable id finds nothing.

The documents are silent on whether a *different* value of a lower-ranked identity excludes a profile; their
example implies it does not (the default, ``conflicts: "none"``). The stricter reading is a workspace setting
(``conflicts: "user_identities"``), and every test here runs under both: where they differ, the test says
what each gives.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import INPUT, WORKSPACE, dsr_body

RULES = ["none", "user_identities"]


@pytest.fixture(params=RULES)
def sb(sandbox: Sandbox, request: pytest.FixtureRequest) -> Sandbox:
    """The sandbox under one ``conflicts`` setting (the documented default, then the stricter reading)."""
    sandbox.set_workspace(identity={"conflicts": request.param})
    return sandbox


def rule(sb: Sandbox) -> str:
    return str(sb.workspace()["identity"]["conflicts"])


def send(sb: Sandbox, user: dict[str, str], device: dict[str, str] | None = None, name: str = "Opened") -> None:
    body: dict[str, Any] = {"environment": "production", "user_identities": user,
                            "events": [{"event_type": "custom_event",
                                        "data": {"event_name": name, "custom_event_type": "other"}}]}
    if device:
        body["device_info"] = device
    assert requests.post(f"{sb.url}/v2/events", json=body, auth=INPUT, timeout=5).status_code == 202


def search(sb: Sandbox, known: dict[str, str], path: str = "/v1/search") -> requests.Response:
    return requests.post(f"{sb.url}{path}", auth=INPUT, timeout=5,
                         json={"environment": "production", "known_identities": known})


def dsr_match(sb: Sandbox, kind: str, identities: dict[str, str], extension: dict[str, str] | None = None) -> list[str]:
    """Submit a DSR (top-level and extension identities), complete it, and return the mpids it matched."""
    def raw(section: dict[str, str]) -> dict[str, Any]:
        return {k: {"value": v, "encoding": "raw"} for k, v in section.items()}

    extra = {"extensions": {"opendsr.mparticle.com": {"subject_identities": raw(extension)}}} if extension else {}
    body = dsr_body(kind, subject_identities=raw(identities), **extra)
    assert requests.post(f"{sb.url}/v3/requests", json=body, auth=WORKSPACE, timeout=5).status_code == 201
    return list(sb.force_status(body["subject_request_id"], "completed")["matched_mpids"])


def erase(sb: Sandbox, **identities: str) -> list[str]:
    return dsr_match(sb, "erasure", identities)


def events_of(sb: Sandbox, mpid: str) -> list[str]:
    profile = sb.profile(mpid)
    assert profile is not None
    return [b["events"][0]["data"]["event_name"] for b in profile["batches"]]


def test_the_first_priority_example_returns_profile_1_although_its_idfv_differs(sb: Sandbox) -> None:
    """guides/idsync/components, "Identity priorities", first scenario: email matches both profiles, other
    breaks the tie; the request's IDFV (2345) differs from Profile 1's (1234) and does not exclude it."""
    one = sb.seed_profile({"email": "h.jekyll.md@example.com", "ios_idfv": "1234", "other": "AAAA"})
    sb.seed_profile({"email": "h.jekyll.md@example.com", "android_aaid": "2345", "other": "BBBB"})
    found = search(sb, {"email": "h.jekyll.md@example.com", "other": "AAAA", "ios_idfv": "2345"})
    assert found.status_code == 200 and found.json()["mpid"] == one["mpid"]
    assert found.json()["matched_identities"] == {"email": "h.jekyll.md@example.com", "other": "AAAA"}


def test_the_second_priority_example_skips_an_absent_identity_and_lets_the_next_one_break_the_tie(sb: Sandbox) -> None:
    """Second scenario: email matches both; IDFV is not in the request; GAID decides: Profile 2."""
    sb.set_workspace(identity={"hierarchy": ["customer_id", "email", "ios_idfv", "android_aaid"]})
    sb.seed_profile({"email": "h.jekyll.md@example.com", "ios_idfv": "1234", "other": "AAAA"})
    two = sb.seed_profile({"email": "h.jekyll.md@example.com", "android_aaid": "2345", "other": "BBBB"})
    assert search(sb, {"email": "h.jekyll.md@example.com", "android_aaid": "2345"}).json()["mpid"] == two["mpid"]


def test_a_stale_lower_priority_identity_does_not_hide_the_person_under_the_documented_rule(sb: Sandbox) -> None:
    """Jane's phone changed; a request still carries the old one. The email (matched uniquely) finds her, her
    next batch lands on her profile and her erasure reaches it. Under the stricter setting the stale phone
    makes her another person: not found, a second profile, an erasure that matches nothing."""
    jane = sb.seed_profile({"email": "jane@example.com", "mobile_number": "+15550199"})
    stale = {"email": "jane@example.com", "mobile_number": "+15550100"}
    found = search(sb, stale)
    access = dsr_match(sb, "access", {"email": "jane@example.com"}, {"mobile_number": "+15550100"})
    send(sb, stale, name="after the change")
    if rule(sb) == "none":
        assert found.status_code == 200 and found.json()["mpid"] == jane["mpid"]
        assert access == [jane["mpid"]]
        assert events_of(sb, jane["mpid"]) == ["after the change"] and len(sb.find_profiles()) == 1
    else:
        assert found.status_code == 404 and access == []
        assert events_of(sb, jane["mpid"]) == [] and len(sb.find_profiles()) == 2


def test_a_shared_phone_number_ranks_above_email_in_the_default_hierarchy(sb: Sandbox) -> None:
    """The default hierarchy (guides/idsync/default-strategy) ranks the phone number above email, so under the
    documented look-up Bob's batch, sharing Alice's household phone, finds her profile first (Bob's email is
    not added: a value already set changes only through /modify). The stricter setting keeps two people."""
    send(sb, {"email": "alice@example.com", "mobile_number": "+15550100"}, name="Alice")
    send(sb, {"email": "bob@example.com", "mobile_number": "+15550100"}, name="Bob")
    alice = search(sb, {"email": "alice@example.com"}).json()["mpid"]
    bob = search(sb, {"email": "bob@example.com"})
    if rule(sb) == "none":
        assert bob.status_code == 404 and events_of(sb, alice) == ["Alice", "Bob"]
        assert erase(sb, email="bob@example.com") == []  # nothing holds Bob's email
    else:
        assert bob.json()["mpid"] != alice and events_of(sb, bob.json()["mpid"]) == ["Bob"]
        assert erase(sb, email="bob@example.com") == [bob.json()["mpid"]]
        assert sb.profile(alice) is not None  # erasing Bob spares Alice


def test_with_the_unique_ids_conflict_rule_only_unique_ids_separate_people(sandbox: Sandbox) -> None:
    sandbox.set_workspace(identity={"conflicts": "unique_ids", "hierarchy": ["customer_id", "email",
                                                                              "mobile_number"]})
    send(sandbox, {"email": "alice@example.com", "mobile_number": "+15550100"})
    send(sandbox, {"email": "bob@example.com", "mobile_number": "+15550100"})
    assert len(sandbox.find_profiles()) == 1  # the shared phone number matches; email is not unique


def test_a_different_login_id_makes_a_separate_profile_even_when_other_identities_match(sb: Sandbox) -> None:
    """Login ids identify "one, and only one, MPID" (guides/idsync/user-data)."""
    send(sb, {"customer_id": "c-1", "email": "shared@example.com"}, name="first")
    send(sb, {"customer_id": "c-2", "email": "shared@example.com"}, name="second")
    first = search(sb, {"customerid": "c-1"}).json()["mpid"]
    second = search(sb, {"customerid": "c-2"}).json()["mpid"]
    assert first != second and events_of(sb, first) == ["first"] and events_of(sb, second) == ["second"]


def test_a_matching_login_id_decides_the_profile_when_other_values_changed(sb: Sandbox) -> None:
    send(sb, {"customer_id": "c-1", "email": "old@example.com"}, name="before")
    send(sb, {"customer_id": "c-1", "email": "new@example.com"}, name="after")
    [profile] = sb.find_profiles()
    assert events_of(sb, profile["mpid"]) == ["before", "after"]
    assert profile["identities"]["email"] == "old@example.com"  # values change through /modify, not batches


def test_the_login_id_examples_of_the_user_data_guide(sb: Sandbox) -> None:
    """guides/idsync/user-data, "Using login IDs to protect known identity records" (login ids email and
    customer id): one matching login id is enough; a device id alone cannot reach a profile with a login id,
    so identify creates a new profile."""
    sb.set_workspace(identity={"login_ids": ["email", "customer_id"]})
    one = sb.seed_profile({"customer_id": "h.jekyll.85", "email": "ed.hyde@example.com", "ios_idfv": "1234"})
    two = sb.seed_profile({"email": "h.jekyll.md@example.com"})
    assert search(sb, {"email": "ed.hyde@example.com"}, "/v1/identify").json()["mpid"] == one["mpid"]
    assert search(sb, {"email": "h.jekyll.md@example.com", "ios_idfv": "5678"},
                  "/v1/identify").json()["mpid"] == two["mpid"]
    three = search(sb, {"ios_idfv": "1234"}, "/v1/identify").json()["mpid"]
    assert three not in (one["mpid"], two["mpid"]) and len(sb.find_profiles()) == 3


def test_the_immutable_id_examples_of_the_user_data_guide(sb: Sandbox) -> None:
    """Immutable id customer id: a search by it finds Profile 1; a search by email finds nothing although
    Profile 2 holds that email ("the request does not match any known immutable IDs"); an unknown customer id
    finds nothing and creates nothing."""
    sb.set_workspace(identity={"login_ids": ["customer_id", "email"], "immutable_ids": ["customer_id"]})
    one = sb.seed_profile({"customer_id": "h.jekyll.85", "email": "ed.hyde@example.com", "ios_idfv": "1234"})
    sb.seed_profile({"email": "h.jekyll.md@example.com"})
    assert search(sb, {"customerid": "h.jekyll.85"}).json()["mpid"] == one["mpid"]
    not_found = search(sb, {"email": "h.jekyll.md@example.com"})
    assert not_found.status_code == 404 and not_found.json()["errors"][0]["message"] == "User Profile Not Found"
    assert search(sb, {"customerid": "9101"}).status_code == 404 and len(sb.find_profiles()) == 2
    assert erase(sb, email="h.jekyll.md@example.com") == []  # a DSR resolves the same way


def test_device_ids_alone_never_attach_data_to_a_login_id_profile(sb: Sandbox) -> None:
    idfa = "0f4e3b52-4d9e-4c1b-8f7a-2b6c9d0e1f11"
    known = sb.seed_profile({"customer_id": "c-1", "ios_idfa": idfa})
    send(sb, {}, device={"ios_advertising_id": idfa}, name="anonymous")
    send(sb, {}, device={"ios_advertising_id": idfa}, name="again")
    assert sb.profile(known["mpid"])["event_batch_count"] == 0  # type: ignore[index]
    [anonymous] = [p for p in sb.find_profiles(ios_idfa=idfa) if p["mpid"] != known["mpid"]]
    assert "customer_id" not in anonymous["identities"]
    assert events_of(sb, anonymous["mpid"]) == ["anonymous", "again"]  # the second joins the anonymous profile


def test_an_anonymous_profile_converts_when_a_login_id_first_arrives(sb: Sandbox) -> None:
    idfv = "9d2c6f3a-1b7e-4e58-a0c4-5f8e2d1b3a77"
    send(sb, {}, device={"ios_idfv": idfv}, name="browse")
    send(sb, {"customer_id": "ABC123"}, device={"ios_idfv": idfv}, name="signup")
    [profile] = sb.find_profiles()
    assert profile["identities"] == {"ios_idfv": idfv, "customer_id": "ABC123"}
    assert events_of(sb, profile["mpid"]) == ["browse", "signup"]


def test_an_immutable_id_protects_a_profile_like_a_login_id(sb: Sandbox) -> None:
    sb.set_workspace(identity={"login_ids": ["customer_id", "email"], "immutable_ids": ["customer_id"]})
    sb.seed_profile({"customer_id": "c-1", "email": "jane@example.com"})
    assert search(sb, {"email": "jane@example.com"}).status_code == 404
    assert search(sb, {"email": "jane@example.com", "customerid": "c-1"}).status_code == 200


def test_the_connector_reaches_a_person_whose_phone_changed_only_under_the_documented_rule(sb: Sandbox) -> None:
    """End to end: a host's opt-out carrying Jane's email and her old phone number. Under the documented look-up
    the connector finds her profile and records the opt-out there; under the stricter reading the stale phone
    hides her, so the opt-out "completes" having changed nothing (the harm that made the default change)."""
    from tests.support.hosting import mparticle, request

    jane = sb.seed_profile({"email": "jane@example.com", "mobile_number": "+15550199"})
    result = mparticle(sb).handle(request("opt_out", regulation="ccpa", mobile_number="+15550100"))
    assert result.status == "completed", result.message
    consent = sb.profile(jane["mpid"])["consent_state"]["ccpa"]  # type: ignore[index]
    if rule(sb) == "none":
        assert result.summary["profile_found"] is True and consent["data_sale_opt_out"]["consented"] is True
    else:
        assert result.summary["profile_found"] is False and consent == {}

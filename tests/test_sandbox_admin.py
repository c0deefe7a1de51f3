"""The admin API refuses bodies of the wrong shape with 400 and names the problem; settings round-trip."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connector_mparticle.sandbox import Sandbox, SandboxAdminError


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

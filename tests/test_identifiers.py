"""Every identifier mParticle knows: access, deletion (verified where mParticle can tell) and opt-out reach the
right end state in the sandbox's admin view, for a subject known only by that identifier.

The expectations below are written from mParticle's documents, not from the connector's table: which types
the DSR API takes (v3 "Supported Identity Types" and the extension list), which IDSync can search (the
http-api ``known_identities`` plus the SDKs' keys), and that an mpid is read through the Profile API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Durations, Sandbox
from dsr_framework import DsrRequest
from tests.support.hosting import drive, file_stem, mparticle, request

#: connector type name -> (sandbox seed name, the DSR API takes it, IDSync can search it)
ROWS: dict[str, tuple[str, bool, bool]] = {
    "customer_id": ("customer_id", True, True),
    "email": ("email", True, True),
    "other": ("other", True, True),
    **{f"other{n}": (f"other_id_{n}", True, True) for n in range(2, 11)},
    "mobile_number": ("mobile_number", True, True),
    "phone_number_2": ("phone_number_2", True, True),
    "phone_number_3": ("phone_number_3", True, True),
    "ios_advertising_id": ("ios_idfa", True, True),
    "ios_idfv": ("ios_idfv", True, True),
    "android_advertising_id": ("android_aaid", True, True),
    "android_uuid": ("android_uuid", True, True),
    "fire_advertising_id": ("fire_aid", True, True),
    "roku_advertising_id": ("roku_aid", True, True),
    "roku_publisher_id": ("roku_publisher_id", True, True),
    "microsoft_advertising_id": ("microsoft_aid", True, False),
    "microsoft_publisher_id": ("microsoft_publisher_id", True, False),
    "push_token": ("push_token", False, True),
    "amp_id": ("amp_id", False, True),
    "device_application_stamp": ("device_application_stamp", False, True),
    "facebook": ("facebook", False, True),
    "facebook_custom_audience_id": ("facebook_custom_audience_id", False, True),
    "google": ("google", False, True),
    "microsoft": ("microsoft", False, True),
    "twitter": ("twitter", False, True),
    "yahoo": ("yahoo", False, True),
    "alias": ("alias", False, True),
}
FAST = {"polling": {"min_interval_seconds": 0.05, "max_interval_seconds": 1}}


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    with Sandbox(durations={"access": Durations(0.05, 0.05), "erasure": Durations(0.05, 0.05)}) as sb:
        yield sb


@pytest.fixture
def sb(shared: Sandbox) -> Sandbox:
    """The module's sandbox, reset: a workspace without login ids (so any one identifier reaches a profile), its
    GDPR purpose defined and the live profile in access results."""
    shared.reset()
    shared.set_workspace(identity={"login_ids": []}, gdpr_purposes=["marketing"], include_live_profile=True)
    return shared


def seed(sb: Sandbox, name: str, value: str) -> dict[str, Any]:
    return sb.seed_profile({ROWS[name][0]: value}, attributes={"plan": "pro"},
                           batches=[{"environment": "production", "events": [
                               {"event_type": "screen_view", "data": {"screen_name": "Home"}}]}])


def subject(kind: str, request_id: str, name: str, value: str, output_dir: str | None = None) -> Any:
    """A request naming the subject by one identifier: the type name itself is the category (the default mapping
    passes an mParticle type name through)."""
    return DsrRequest(request_id, kind, "gdpr", {name: value}, datetime(2026, 11, 29, 10, 0, tzinfo=UTC),  # type: ignore[arg-type]
                      output_dir)


@pytest.mark.parametrize("name", list(ROWS))
def test_every_identifier_reaches_the_right_end_state(sb: Sandbox, tmp_path: Path, name: str) -> None:
    dsr_ok, searchable = ROWS[name][1:]
    value = "row.subject@example.com" if name == "email" else f"{name}-value-1"
    profile = seed(sb, name, value)
    handle = mparticle(sb, **FAST, opt_out={"gdpr_purposes": ["marketing"]})
    opt_out = handle.handle(subject("opt_out", f"o-{name}", name, value))
    consent = (sb.profile(profile["mpid"]) or {})["consent_state"]
    if searchable:
        assert opt_out.status == "completed" and consent["gdpr"]["marketing"]["consented"] is False, opt_out.message
    else:
        assert opt_out.status == "failed" and opt_out.error is not None
        assert opt_out.error.error_class == "configuration" and "marketing" not in consent.get("gdpr", {})

    access, _ = drive(handle, subject("access", f"a-{name}", name, value, str(tmp_path)))
    deletion, _ = drive(handle, subject("deletion", f"d-{name}", name, value))
    if not dsr_ok:
        for result in (access, deletion):
            assert result.status == "failed" and result.error is not None, result.message
            assert result.error.error_class == "configuration" and "DSR API" in result.message
        assert sb.profile(profile["mpid"]) is not None and sb.dsrs() == []
        return
    assert access.status == "completed" and access.summary["profiles_found"] == 1, access.message
    assert access.summary["profiles"][0]["mpid"] == str(profile["mpid"])
    assert deletion.status == "completed", deletion.message
    assert sb.profile(profile["mpid"]) is None, "the erasure did not reach the profile"
    assert deletion.summary["verified"] is searchable, deletion.message
    if not searchable:
        assert f"{name}: no mParticle API can search by {name}" in deletion.message
        assert deletion.verification is not None and [r.code for r in deletion.verification.reasons] == [
            "not_searchable"]


def test_a_subject_known_only_by_mpid_is_erased_and_verified_through_the_profile_api(sb: Sandbox) -> None:
    profile = seed(sb, "email", "only-mpid@example.com")
    handle = mparticle(sb, **FAST)
    result, _ = drive(handle, request("deletion", email=None, vendor_id=str(profile["mpid"])))
    assert result.status == "completed" and result.summary["verified"] is True, result.message
    assert sb.profile(profile["mpid"]) is None
    [dsr] = sb.dsrs()
    assert dsr["identities"] == {"mpid": str(profile["mpid"])}
    reads = [e for e in sb.request_log(api="profile")]
    assert reads and {e["client"] for e in reads} == {"oauth"}, "the Profile API was read with a sandbox token"
    assert "verify erasure: mpid by Profile API" in [e.action for e in result.audit]


def test_an_mpid_without_the_profile_api_is_erased_but_said_unverifiable(sb: Sandbox) -> None:
    profile = seed(sb, "email", "no-profile-api@example.com")
    handle = _without_profile(sb)
    result, _ = drive(handle, request("deletion", email=None, vendor_id=str(profile["mpid"])))
    assert result.status == "completed" and result.summary["verified"] is False
    assert "mpid: IDSync cannot search by mpid and the Profile API is not configured" in result.message
    assert result.verification is not None and [r.code for r in result.verification.reasons] == [
        "api_not_configured"]
    assert sb.profile(profile["mpid"]) is None


def _without_profile(sb: Sandbox) -> Any:
    from dsr_framework.host import load_host

    config = sb.connector_config(**FAST)
    config.pop("profile")
    return load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}}).connector("mparticle")


def test_an_mpid_with_an_email_is_two_requests_each_erasing_and_verified(sb: Sandbox, tmp_path: Path) -> None:
    known = seed(sb, "email", "both@example.com")
    anonymous = sb.seed_profile({"ios_idfa": "idfa-both"})
    handle = mparticle(sb, **FAST)
    ids = {"email": "both@example.com", "vendor_id": str(anonymous["mpid"])}
    access, _ = drive(handle, request("access", output_dir=str(tmp_path), **ids))
    assert access.status == "completed" and access.summary["profiles_found"] == 2, access.message
    name = file_stem("mparticle-access", request("access", **ids))
    assert sorted(Path(f.path).name for f in access.files) == [
        f"{name}-mpid.zip", f"{name}-receipt.json", f"{name}-summary.json", f"{name}-summary.txt", f"{name}.zip"]
    deletion, _ = drive(handle, request("deletion", **ids))
    assert deletion.status == "completed" and deletion.summary["verified"] is True, deletion.message
    assert sb.profile(known["mpid"]) is None and sb.profile(anonymous["mpid"]) is None
    kinds = sorted(tuple(sorted(d["identities"])) for d in sb.dsrs() if d["subject_request_type"] == "erasure")
    assert kinds == [("email",), ("mpid",)]
    assert len(deletion.summary["subject_request_ids"]) == 2


def test_an_app_user_id_kept_as_other3_is_mapped_by_the_configuration(sb: Sandbox) -> None:
    profile = sb.seed_profile({"other_id_3": "app-user-77"})
    handle = mparticle(sb, **FAST, identities={"app_user_id": "other3"})
    result, _ = drive(handle, request("deletion", email=None, app_user_id="app-user-77"))
    assert result.status == "completed" and result.summary["verified"] is True, result.message
    assert sb.profile(profile["mpid"]) is None
    assert sb.dsrs()[0]["extensions_sent"]["opendsr.mparticle.com"]["subject_identities"] == {
        "other3": {"value": "app-user-77", "encoding": "raw"}}


def test_a_revoked_token_is_fetched_again_once(sb: Sandbox) -> None:
    profile = seed(sb, "email", "token@example.com")
    handle = mparticle(sb, **FAST)
    assert handle.handle(request("opt_out", email=None, vendor_id=str(profile["mpid"]))).status == "completed"
    sb.revoke_tokens()
    again = handle.handle(request("opt_out", request_id="host-req-2", email=None, vendor_id=str(profile["mpid"])))
    assert again.status == "completed", again.message
    tokens = [e for e in sb.request_log(api="oauth") if e["path"] == "/oauth/token"]
    assert len(tokens) == 2


def test_a_token_the_profile_api_keeps_refusing_fails_as_authentication(sb: Sandbox) -> None:
    from tests.adversarial.hostile import Answer, HostileServer

    profile = seed(sb, "email", "refused@example.com")
    with HostileServer("127.0.0.1", sb.url) as hostile:
        hostile.on("*", r"^/userprofile/", lambda seen, forward: Answer.of_json(401, {"error": "invalid token"}))
        config = sb.connector_config(**FAST)
        config["profile"]["base_url"] = hostile.url
        from dsr_framework.host import load_host

        handle = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}}).connector("mparticle")
        result = handle.handle(request("opt_out", email=None, vendor_id=str(profile["mpid"])))
        assert result.status == "failed" and result.error is not None
        assert result.error.error_class == "authentication" and "Profile API" in result.message
        assert len(hostile.requests(r"^/userprofile/")) == 2  # the first token, then one fresh one

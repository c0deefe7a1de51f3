"""The Events API refuses what mParticle's published schema refuses, accepts what its documents allow, and
truncates names over 256 characters (``guides/default-service-limits``).

The closed value lists below are written from ``developers/server/json-reference`` (not read back from the
schema the sandbox uses), so a sandbox that loosened or mis-shipped the schema fails here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft7Validator

from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.events_schema import GAPS, PUBLISHED_FILE, batch_problem, corrected_schema
from connector_mparticle.sandbox.events_schema import published_schema as shipped_schema
from tests.support.mp import INPUT, batch

ROOT = Path(__file__).resolve().parents[1]
UUID = "5b4c1f0e-2d3a-4e6f-8a9b-0c1d2e3f4a5b"


def upload(sb: Sandbox, body: Any) -> requests.Response:
    return requests.post(f"{sb.url}/v2/events", json=body, auth=INPUT, timeout=5)


def event(event_type: str, **data: Any) -> dict[str, Any]:
    return batch(events=[{"event_type": event_type, "data": data}])


def test_the_shipped_schema_is_mparticles_file_unchanged() -> None:
    package = resources.files("connector_mparticle.sandbox")
    raw = package.joinpath(PUBLISHED_FILE).read_bytes()
    source = json.loads(package.joinpath("published/SOURCE.json").read_text())
    assert hashlib.sha256(raw).hexdigest() == source["sha256"]
    assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == source["git_blob"]  # noqa: S324 - git's id
    assert source["url"].endswith(source["file"]) and PUBLISHED_FILE.endswith(source["file"])
    assert shipped_schema()["$id"] == source["url"]


def test_the_published_consent_state_refuses_a_ccpa_opt_out_so_the_documented_form_is_added(sandbox: Sandbox) -> None:
    opt_out = batch(consent_state={"ccpa": {"data_sale_opt_out": {"consented": True,
                                                                   "timestamp_unixtime_ms": 1_700_000_000_000}}})
    assert list(Draft7Validator(shipped_schema()).iter_errors(opt_out)), "the published file is out of date"
    assert upload(sandbox, opt_out).status_code == 202


@pytest.mark.parametrize(("body", "where"), [
    (event("custom_event", event_name="x", custom_event_type="shopping"), "$.events[0].data.custom_event_type"),
    (event("commerce_event", product_action={"action": "buy"}), "$.events[0].data.product_action.action"),
    (event("commerce_event", promotion_action={"action": "hover"}), "$.events[0].data.promotion_action.action"),
    (event("application_state_transition", application_transition_type="application_crash"),
     "$.events[0].data.application_transition_type"),
    (event("push_message", push_message_type="opened"), "$.events[0].data.push_message_type"),
    (event("profile", profile_event_type="rename"), "$.events[0].data.profile_event_type"),
    (batch(device_info={"platform": "Linux"}), "$.device_info.platform"),
    (batch(device_info={"att_authorization_status": "maybe"}), "$.device_info.att_authorization_status"),
    (batch(device_info={"shoe_size": "9"}), "'shoe_size' was unexpected"),
    (batch(application_info={"colour": "blue"}), "'colour' was unexpected"),
    (batch(device_info={"ios_advertising_id": "idfa-1"}), "$.device_info.ios_advertising_id"),
    (batch(device_info={"android_advertising_id": "gaid"}), "$.device_info.android_advertising_id"),
    (batch(mp_deviceid="das-1"), "$.mp_deviceid"),
    (batch(ip="300.1.2.3"), "$.ip"),
    (batch(ip="not an address"), "$.ip"),
    (batch(mpid="8000000000000000001"), "$.mpid"),
    (batch(source_info={"channel": "carrier_pigeon"}), "$.source_info.channel"),
    (event("custom_event", event_name="x", custom_event_type="other", timestamp_unixtime_ms="1700000000000"),
     "$.events[0].data.timestamp_unixtime_ms"),
    (batch(events=[{"data": {"event_name": "x", "custom_event_type": "other"}}]), "'event_type' is a required"),
    (batch(events=[{"event_type": "custom_event"}]), "'data' is a required"),
], ids=["custom-event-type", "product-action", "promotion-action", "transition-type", "push-type", "profile-type",
        "platform", "att-status", "device-info-key", "application-info-key", "idfa-format", "gaid-format",
        "mp-deviceid-format", "ip-range", "ip-text", "mpid-string", "source-channel", "timestamp-string",
        "no-event-type", "no-data"])
def test_what_the_published_schema_refuses_is_refused_with_a_400_naming_the_field(
    sandbox: Sandbox, body: dict[str, Any], where: str
) -> None:
    response = upload(sandbox, body)
    assert response.status_code == 400
    assert where in response.json()["errors"][0]["message"]
    assert sandbox.stats()["batches_stored"] == 0


#: json-reference: product_action "The allowed values of action are", promotion_action, application_state_transition,
#: push_message, custom_event_type, device_info platform.
DOCUMENTED_VALUES: list[tuple[str, dict[str, Any]]] = [
    *[("product", event("commerce_event", product_action={"action": a})) for a in (
        "add_to_cart", "remove_from_cart", "checkout", "checkout_option", "click", "view_detail", "purchase", "refund",
        "add_to_wishlist", "remove_from_wish_list")],
    *[("promotion", event("commerce_event", promotion_action={"action": a})) for a in ("view", "click")],
    *[("transition", event("application_state_transition", application_transition_type=t)) for t in (
        "application_initialized", "application_exit", "application_background", "application_foreground")],
    *[("push", event("push_message", push_message_type=t)) for t in ("sent", "received", "action")],
    *[("custom", event("custom_event", event_name="x", custom_event_type=t)) for t in (
        "attribution", "location", "media", "navigation", "search", "social", "transaction", "user_content",
        "user_preference", "other")],
    *[("platform", batch(device_info={"platform": p})) for p in (
        "iOS", "Android", "web", "tvOS", "roku", "out_of_band", "alexa", "smart_tv", "fire_tv", "xbox")],
    ("ipv6", batch(ip="2001:db8::1")), ("ipv4", batch(ip="172.217.12.142")),
    ("device-ids", batch(device_info={"ios_advertising_id": UUID, "ios_idfv": UUID, "android_advertising_id": UUID,
                                      "android_uuid": "f924f1e5707b34b7", "push_token": "tok", "amp_id": "amp-1"})),
    ("read-only-session-id", event("session_start", session_uuid=UUID)),
    ("partner-identities", batch(partner_identities={"partner_id": "1234"}, schema_version=2)),
    ("no-environment", {"user_identities": {"email": "jane@example.com"}}),
]


@pytest.mark.parametrize(("kind", "body"), DOCUMENTED_VALUES, ids=[f"{k}-{i}" for i, (k, _) in
                                                                   enumerate(DOCUMENTED_VALUES)])
def test_every_value_the_json_reference_documents_is_accepted(
    sandbox: Sandbox, kind: str, body: dict[str, Any]
) -> None:
    response = upload(sandbox, body)
    assert response.status_code == 202, (kind, response.text)
    assert sandbox.stats()["batches_stored"] == 1


EVENTS = [
    {"event_type": "custom_event", "data": {"event_name": "x", "custom_event_type": "other"}},
    {"event_type": "custom_event", "data": {"event_name": "x", "custom_event_type": "bogus"}},
    {"event_type": "custom_event", "data": {"event_name": "x", "custom_event_type": "other", "extra": 1}},
    {"event_type": "screen_view", "data": {"screen_name": "Home", "custom_flags": {"a": 1}}},
    {"event_type": "commerce_event", "data": {"product_action": {"action": "purchase", "products": [{"id": "1"}]}}},
    {"event_type": "commerce_event", "data": {"product_impressions": [{"product_impression_list": "l"}]}},
    {"event_type": "session_end", "data": {"session_duration_ms": "long"}},
    {"event_type": "first_run", "data": {}, "extra": True},
    {"event_type": "uninstall", "data": {"location": {"latitude": 1}}},
    {"event_type": "breadcrumb", "data": {}},
    {"event_type": "push_reaction", "data": {"custom_attributes": {"k": "v"}}},
    {"event_type": "crash_report", "data": {"breadcrumbs": [{"event_type": "breadcrumb", "data": {"label": "a"}}]}},
]


@pytest.mark.parametrize("one", EVENTS, ids=[f"event-{i}" for i in range(len(EVENTS))])
def test_choosing_the_definition_by_event_type_gives_the_verdict_of_the_schemas_one_of(one: dict[str, Any]) -> None:
    """The schema's ``events.items`` is a ``oneOf``; the sandbox validates by ``event_type`` instead."""
    whole = Draft7Validator(corrected_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
    body = {"environment": "production", "events": [one]}
    assert whole.is_valid(body) == (batch_problem(body) is None)


def test_every_correction_names_its_source() -> None:
    assert len({g.where for g in GAPS}) == len(GAPS)
    for gap in GAPS:
        assert gap.source and gap.change, gap.where


def test_names_over_256_characters_are_truncated_and_values_are_kept(sandbox: Sandbox) -> None:
    long_name, long_key, long_value = "N" * 300, "k" * 300, "v" * 1000
    body = batch(events=[
        {"event_type": "custom_event", "data": {"event_name": long_name, "custom_event_type": "other",
                                                "custom_attributes": {long_key: long_value}}},
        {"event_type": "screen_view", "data": {"screen_name": "S" * 257}}])
    assert upload(sandbox, body).status_code == 202
    [profile] = sandbox.find_profiles(email="jane@example.com")
    stored = sandbox.profile(profile["mpid"])
    assert stored is not None
    custom, screen = (e["data"] for e in stored["batches"][0]["events"])
    assert custom["event_name"] == "N" * 256 and screen["screen_name"] == "S" * 256
    assert custom["custom_attributes"] == {"k" * 256: long_value}


@pytest.mark.slow
def test_the_wheel_ships_the_published_schema_and_its_source(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("connector_mparticle-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = archive.read(f"connector_mparticle/sandbox/{PUBLISHED_FILE}")
    assert "connector_mparticle/sandbox/published/SOURCE.json" in names
    assert json.loads(shipped) == shipped_schema()

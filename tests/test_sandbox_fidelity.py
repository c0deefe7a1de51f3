"""Fidelity: the sandbox takes what mParticle's own Python SDK sends, and the connector sends what mParticle's
published Events schema allows.

1. mParticle's official Python SDK (``mparticle`` 0.16.1, the Events API client) uploads every event type and
   every identity type it can send; each is accepted and stored on the profile that identity names.
2. Every Events batch the connector sends (its connection check and its opt-outs, driven through the host
   facade) is checked against a validator written from the published schema (``tests/support/events_schema``),
   whose out-of-date ``consent_state`` is corrected explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft7Validator

from connector_mparticle.sandbox import Sandbox
from tests.support.events_schema import PUBLISHED_CONSENT_STATE, batch_schema, problems
from tests.support.hosting import mparticle as connector
from tests.support.hosting import request
from tests.support.mp import CREDS

mp = pytest.importorskip("mparticle")
from mparticle.models.user_attribute_change_event import UserAttributeChangeEvent  # noqa: E402


@pytest.fixture(scope="module")
def sdk_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def events_api(sdk_sandbox: Sandbox) -> Any:
    # One Configuration for the module: each one adds log handlers (libraries.md); always pass it explicitly,
    # the SDK's default argument is one shared object.
    config = mp.Configuration()
    config.api_key, config.api_secret = CREDS.input_key, CREDS.input_secret
    config.host = f"{sdk_sandbox.url}/v2"
    return mp.EventsApi(config)


@pytest.fixture
def sb(sdk_sandbox: Sandbox) -> Sandbox:
    sdk_sandbox.reset()
    return sdk_sandbox


def send(api: Any, batch: Any) -> int:
    _, status, _ = api.upload_events_with_http_info(batch)
    return int(status)


def sdk_batch(**identities: str) -> Any:
    batch = mp.Batch()
    batch.environment = "development"
    batch.user_identities = mp.UserIdentities(**identities)
    return batch


#: Every event class mParticle's Python SDK lets a Batch hold (Batch._allowed_types), with its required data.
SDK_EVENTS: dict[str, Any] = {
    "AppEvent": lambda: mp.AppEvent("Clicked", "navigation", custom_attributes={"button": "buy"}),
    "FirstRunEvent": lambda: mp.FirstRunEvent(),
    "SessionStartEvent": lambda: mp.SessionStartEvent(session_uuid="91b86d0c-86cb-4124-a8b2-edee107de454"),
    "SessionEndEvent": lambda: mp.SessionEndEvent(session_duration_ms=6000),
    "ApplicationStateTransitionEvent": lambda: mp.ApplicationStateTransitionEvent.create_install_event(),
    "ScreenViewEvent": lambda: mp.ScreenViewEvent(screen_name="Home"),
    "PushRegistrationEvent": lambda: mp.PushRegistrationEvent(register=True, registration_token="fcm-token"),
    "ProfileEvent": lambda: mp.ProfileEvent(profile_event_type="login"),
    "OptOutEvent": lambda: mp.OptOutEvent(is_opted_out=True),
    "BreadcrumbEvent": lambda: mp.BreadcrumbEvent(label="checkout step 1"),
    "CommerceEvent": lambda: mp.CommerceEvent(mp.ProductAction("purchase")),
    "PushMessageEvent": lambda: mp.PushMessageEvent(push_message_type="received"),
    "NetworkPerformanceEvent": lambda: mp.NetworkPerformanceEvent(http_verb="GET", url="https://example.com",
                                                                  time_elapsed=120),
    "CrashReportEvent": lambda: mp.CrashReportEvent(class_name="NullPointerException"),
    "UserAttributeChangeEvent": lambda: UserAttributeChangeEvent(),
}


@pytest.mark.parametrize("name", sorted(SDK_EVENTS))
def test_every_event_class_of_the_official_sdk_is_accepted_and_stored_on_its_profile(
    sb: Sandbox, events_api: Any, name: str
) -> None:
    batch = sdk_batch(email=f"{name.lower()}@example.com")
    batch.events = [SDK_EVENTS[name]()]
    sent = mp.ApiClient.sanitize_for_serialization(batch)
    assert send(events_api, batch) == 202
    [profile] = sb.find_profiles(email=f"{name.lower()}@example.com")
    stored = sb.profile(profile["mpid"])
    assert stored is not None and stored["batches"] == [sent]
    # The SDK files CrashReportEvent under "commerce_event" (its Batch._allowed_types); stored as sent.
    assert stored["batches"][0]["events"][0]["event_type"] == sent["events"][0]["event_type"]


#: EventBase's own event_type values (besides "unknown", which no document lists).
RAW_EVENT_TYPES = ["session_start", "session_end", "screen_view", "custom_event", "crash_report", "opt_out",
                   "first_run", "pre_attribution", "push_registration", "application_state_transition",
                   "push_message", "network_performance", "breadcrumb", "profile", "push_reaction", "commerce_event",
                   "user_attribute_change"]
RAW_DATA = {"custom_event": {"event_name": "Raw", "custom_event_type": "other"},
            "push_registration": {"register": False, "registration_token": "t"},
            "application_state_transition": {"application_transition_type": "application_exit"},
            "push_message": {"push_message_type": "action"}, "breadcrumb": {"label": "l"},
            "profile": {"profile_event_type": "logout"}}


@pytest.mark.parametrize("event_type", RAW_EVENT_TYPES)
def test_every_event_type_the_sdk_can_name_is_accepted(sb: Sandbox, events_api: Any, event_type: str) -> None:
    batch = sdk_batch(email=f"{event_type}@example.com")
    batch.events = [mp.EventBase(data=RAW_DATA.get(event_type, {}), event_type=event_type)]
    assert send(events_api, batch) == 202
    [profile] = sb.find_profiles(email=f"{event_type}@example.com")
    assert profile["event_batch_count"] == 1


#: mParticle's Python SDK UserIdentities attribute -> the sandbox's canonical identity type.
SDK_USER_IDENTITIES = {"customerid": "customer_id", "email": "email", "other": "other", "facebook": "facebook",
                       "twitter": "twitter", "google": "google", "microsoft": "microsoft", "yahoo": "yahoo",
                       "alias": "alias", "facebook_custom_audience_id": "facebook_custom_audience_id",
                       **{f"other_id_{n}": f"other_id_{n}" for n in range(2, 11)},
                       "mobile_number": "mobile_number", "phone_number_2": "phone_number_2",
                       "phone_number_3": "phone_number_3"}


@pytest.mark.parametrize("attribute", sorted(SDK_USER_IDENTITIES))
def test_every_user_identity_of_the_official_sdk_is_stored_on_the_profile_it_names(
    sb: Sandbox, events_api: Any, attribute: str
) -> None:
    existing = sb.seed_profile({SDK_USER_IDENTITIES[attribute]: f"id-{attribute}"})
    batch = sdk_batch(**{attribute: f"id-{attribute}"})
    batch.events = [mp.ScreenViewEvent(screen_name="Account")]
    assert send(events_api, batch) == 202
    [profile] = sb.find_profiles(**{SDK_USER_IDENTITIES[attribute]: f"id-{attribute}"})
    assert profile["mpid"] == existing["mpid"] and profile["event_batch_count"] == 1


#: DeviceInformation attributes that carry a device id (and the batch's mp_deviceid) -> canonical type.
SDK_DEVICE_IDS = {"ios_advertising_id": "ios_idfa", "ios_idfv": "ios_idfv", "android_advertising_id": "android_aaid",
                  "android_uuid": "android_uuid", "push_token": "push_token", "amp_id": "amp_id",
                  "roku_advertising_id": "roku_aid", "roku_publisher_id": "roku_publisher_id",
                  "microsoft_advertising_id": "microsoft_aid", "microsoft_publisher_id": "microsoft_publisher_id",
                  "fire_advertising_id": "fire_aid", "mp_deviceid": "device_application_stamp"}


@pytest.mark.parametrize("attribute", sorted(SDK_DEVICE_IDS))
def test_a_batch_the_sdk_identifies_only_by_a_device_id_is_stored_on_that_devices_profile(
    sb: Sandbox, events_api: Any, attribute: str
) -> None:
    value = "2f6a1c0e-5b4d-4e8a-9c3f-7d1e0b9a8c6d"
    batch = mp.Batch()
    batch.environment = "production"
    if attribute == "mp_deviceid":
        batch.mp_deviceid = value
    else:
        batch.device_info = mp.DeviceInformation(**{attribute: value})
    batch.events = [mp.SessionStartEvent()]
    assert send(events_api, batch) == 202
    [profile] = sb.find_profiles(**{SDK_DEVICE_IDS[attribute]: value})
    assert profile["event_batch_count"] == 1


def test_the_sdks_consent_upload_lands_on_the_existing_profile(sb: Sandbox, events_api: Any) -> None:
    sb.set_workspace(gdpr_purposes=["location_collection"])
    existing = sb.seed_profile({"email": "jane@example.com"})
    batch = sdk_batch(email="jane@example.com")
    consent = mp.ConsentState()
    consent.ccpa = {"data_sale_opt_out": mp.CCPAConsentState(
        document="ccpa_v1", consented=True, timestamp_unixtime_ms=1_700_000_000_000, location="mparticle.test/signup",
        hardware_id="IDFA:a5d934n0")}
    consent.gdpr = {"location_collection": mp.GDPRConsentState(
        document="location_v4", consented=False, timestamp_unixtime_ms=1_700_000_000_000, location="web",
        hardware_id="IDFA:a5d934n0")}
    batch.consent_state = consent
    assert send(events_api, batch) == 202
    profile = sb.profile(existing["mpid"])
    assert profile is not None
    assert profile["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is True
    assert profile["consent_state"]["gdpr"]["location_collection"]["consented"] is False


def test_the_sdks_bulk_upload_stores_every_batch(sb: Sandbox, events_api: Any) -> None:
    batches = []
    for n in range(3):
        batch = sdk_batch(email=f"bulk{n}@example.com")
        batch.events = [mp.AppEvent(f"Event {n}", "other")]
        batches.append(batch)
    events_api.bulk_upload_events(batches)
    assert sorted(p["identities"]["email"] for p in sb.find_profiles()) == [f"bulk{n}@example.com" for n in range(3)]


# -- the connector's batches against the published schema -------------------------------------------------------


def test_the_published_consent_state_would_refuse_a_ccpa_opt_out_so_the_validator_corrects_it() -> None:
    ccpa = {"environment": "production", "mpid": 1, "consent_state": {"ccpa": {"data_sale_opt_out": {
        "consented": True, "timestamp_unixtime_ms": 1_700_000_000_000}}}}
    assert problems(ccpa, Draft7Validator(batch_schema(PUBLISHED_CONSENT_STATE)))  # out of date
    assert problems(ccpa) == []
    assert problems({**ccpa, "mpid": "1", "colour": "blue"}) == [  # and the validator can fail
        "$: Additional properties are not allowed ('colour' was unexpected)",
        "mpid: '1' is not of type 'integer', 'null'"]


def test_every_events_batch_the_connector_sends_fits_the_published_schema() -> None:
    with Sandbox(log_bodies=("events",), gdpr_purposes=("marketing", "analytics")) as sb:
        sb.seed_profile({"email": "jane@example.com"})
        ccpa = connector(sb)
        assert ccpa.test_connection().ok
        assert ccpa.handle(request("opt_out", regulation="ccpa")).status == "completed"
        gdpr = connector(sb, opt_out={"gdpr_purposes": ["marketing", "analytics"], "document": "privacy_v3"})
        assert gdpr.handle(request("opt_out", request_id="host-2")).status == "completed"
        sent = [json.loads(e["body"]) for e in sb.request_log(api="events")]
    assert len(sent) == 3, "a connection check and two opt-outs"
    for batch in sent:
        assert problems(batch) == [], batch
    assert {tuple(b.get("consent_state", {})) for b in sent} >= {("ccpa",)}

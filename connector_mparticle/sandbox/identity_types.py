"""The sandbox's own table of mParticle identity types and their name in each API, written from mParticle's documents.

The sandbox must not share the connector's table (``connector_mparticle.identities``): a wrong name there would
then pass on both sides. Each column cites its source; ``None`` means that API has no documented name.

Sources (repository ``mParticle/docs`` unless said otherwise):

- ``dsr``: ``developers/dsr-api/v3/index.md`` "Supported Identity Types" (top-level keys) and the list of keys
  allowed only inside the ``opendsr.mparticle.com`` extension (``ext``).
- ``idsync``: ``static/downloads/identity-swagger.yaml`` ``Identities`` and ``developers/idsync/http-api/index.md``;
  ``other2``-``other10``, ``mobile_number``, ``phone_number_2``/``_3`` and ``alias`` from mParticle's SDKs, which send
  them in ``known_identities`` (``mparticle-android-sdk`` ``MParticleIdentityClientImpl.java`` ``getStringValue``;
  ``mparticle-web-sdk`` ``src/types.ts`` ``IdentityType.getIdentityName``).
- ``events``: ``developers/server/json-reference/index.md`` ``user_identities``; ``alias``, ``yahoo`` and
  ``facebook_custom_audience_id`` from ``static/schema/mparticle.inbound.eventsapi.schema.json``; ``customerid``
  is how mParticle's Python SDK spells the customer id (``mparticle-python-sdk`` ``models/user_identities.py``).
- ``device_info``: ``json-reference`` ``device_info`` table; ``amp_id`` from the Events JSON schema's
  ``DeviceInformation``. ``mp_deviceid`` (a batch field of the schema and the Python SDK) is taken to carry the
  device application stamp: an inference, the documents do not say so.
- ``profile``: the Profile API's ``type`` names (``developers/profile-api/index.md`` sample: ``customer_id``,
  ``email``, ``android_id``, ``google_advertising_id``), completed from the Platform API's identity types on the
  same host (``developers/users/index.md``) and the device types of ``developers/ca-seeding-api/index.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICE_INFO_KEYS", "IDENTITY_TYPES", "IdentityType", "by_dsr_key", "by_events_key", "by_idsync_key",
           "by_name", "by_profile_type"]


@dataclass(frozen=True)
class IdentityType:
    """One identity type: the sandbox's canonical name and its name in each API."""

    name: str  #: canonical name, used by the admin API (seed_profile, find_profiles)
    device: bool  #: identifies a device (shared by the people using it), not a person
    dsr: tuple[str, ...] = ()  #: OpenDSR v3 subject_identities keys
    dsr_extension_only: bool = False  #: allowed only inside the opendsr.mparticle.com extension
    idsync: str | None = None  #: IDSync known_identities key
    events: tuple[str, ...] = ()  #: Events API user_identities keys
    device_info: str | None = None  #: Events API device_info key
    profile: str | None = None  #: Profile API identity ``type``


def _other(n: int) -> IdentityType:
    return IdentityType(f"other_id_{n}", False, (f"other{n}",), True, f"other{n}", (f"other_id_{n}",),
                        profile=f"other_id_{n}")


IDENTITY_TYPES: tuple[IdentityType, ...] = (
    IdentityType("customer_id", False, ("controller_customer_id",), False, "customerid", ("customer_id", "customerid"),
                 profile="customer_id"),
    IdentityType("email", False, ("email",), False, "email", ("email",), profile="email"),
    IdentityType("other", False, ("other",), True, "other", ("other",), profile="other"),
    *(_other(n) for n in range(2, 11)),
    IdentityType("mobile_number", False, ("mobile_number",), True, "mobile_number", ("mobile_number",),
                 profile="mobile_number"),
    IdentityType("phone_number_2", False, ("phone_number_2",), True, "phone_number_2", ("phone_number_2",),
                 profile="phone_number_2"),
    IdentityType("phone_number_3", False, ("phone_number_3",), True, "phone_number_3", ("phone_number_3",),
                 profile="phone_number_3"),
    IdentityType("alias", False, idsync="alias", events=("alias",), profile="alias"),
    IdentityType("facebook", False, idsync="facebook", events=("facebook",), profile="facebook_id"),
    IdentityType("facebook_custom_audience_id", False, idsync="facebookcustomaudienceid",
                 events=("facebook_custom_audience_id",), profile="facebook_custom_audience_id"),
    IdentityType("google", False, idsync="google", events=("google",), profile="google_id"),
    IdentityType("twitter", False, idsync="twitter", events=("twitter",), profile="twitter_id"),
    IdentityType("yahoo", False, idsync="yahoo", events=("yahoo",), profile="yahoo_id"),
    IdentityType("microsoft", False, idsync="microsoft", events=("microsoft",), profile="microsoft_id"),
    IdentityType("ios_idfa", True, ("ios_advertising_id",), idsync="ios_idfa", device_info="ios_advertising_id",
                 profile="ios_advertising_id"),
    IdentityType("ios_idfv", True, ("ios_vendor_id",), idsync="ios_idfv", device_info="ios_idfv",
                 profile="ios_vendor_id"),
    IdentityType("android_aaid", True, ("android_advertising_id",), idsync="android_aaid",
                 device_info="android_advertising_id", profile="google_advertising_id"),
    IdentityType("android_uuid", True, ("android_id",), idsync="android_uuid", device_info="android_uuid",
                 profile="android_id"),
    IdentityType("fire_aid", True, ("fire_advertising_id",), idsync="fire_aid", device_info="fire_advertising_id",
                 profile="fire_advertising_id"),
    IdentityType("roku_aid", True, ("roku_advertising_id",), idsync="roku_aid", device_info="roku_advertising_id",
                 profile="roku_advertising_id"),
    # The v3 table spells it roku_publishing_id; its /discovery example (and the OpenDSR spec) roku_publisher_id.
    IdentityType("roku_publisher_id", True, ("roku_publisher_id", "roku_publishing_id"), idsync="roku_publisher_id",
                 device_info="roku_publisher_id", profile="roku_publisher_id"),
    IdentityType("microsoft_aid", True, ("microsoft_advertising_id",), device_info="microsoft_advertising_id",
                 profile="microsoft_advertising_id"),
    IdentityType("microsoft_publisher_id", True, ("microsoft_publisher_id",), device_info="microsoft_publisher_id",
                 profile="microsoft_publisher_id"),
    IdentityType("push_token", True, idsync="push_token", device_info="push_token",
                 profile="push_notification_token"),
    IdentityType("amp_id", True, idsync="amp_id", device_info="amp_id", profile="amp_id"),
    IdentityType("device_application_stamp", True, idsync="device_application_stamp", device_info="mp_deviceid",
                 profile="device_application_stamp"),
)

_BY_NAME = {t.name: t for t in IDENTITY_TYPES}
_BY_DSR = {key: t for t in IDENTITY_TYPES for key in t.dsr}
_BY_IDSYNC = {t.idsync: t for t in IDENTITY_TYPES if t.idsync}
_BY_EVENTS = {key: t for t in IDENTITY_TYPES for key in t.events}
_BY_PROFILE = {t.profile: t for t in IDENTITY_TYPES if t.profile}
#: Events API ``device_info`` key (and the batch's ``mp_deviceid``) -> identity type.
DEVICE_INFO_KEYS = {t.device_info: t for t in IDENTITY_TYPES if t.device_info}


def by_name(name: str) -> IdentityType | None:
    """The identity type with canonical ``name``."""
    return _BY_NAME.get(name)


def by_dsr_key(key: str) -> IdentityType | None:
    """The identity type an OpenDSR ``subject_identities`` key names."""
    return _BY_DSR.get(key)


def by_idsync_key(key: str) -> IdentityType | None:
    """The identity type an IDSync ``known_identities`` key names."""
    return _BY_IDSYNC.get(key)


def by_events_key(key: str) -> IdentityType | None:
    """The identity type an Events API ``user_identities`` key names."""
    return _BY_EVENTS.get(key)


def by_profile_type(key: str) -> IdentityType | None:
    """The identity type a Profile API ``type`` names."""
    return _BY_PROFILE.get(key)

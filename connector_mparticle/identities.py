"""mParticle names each identity type differently in each API: this is the connector's one table of those names.

Sources (repository ``mParticle/docs``, paths under ``src/pages``, unless said otherwise):

* **DSR** ``developers/dsr-api/v3/index.md`` "Supported Identity Types": eleven top-level ``subject_identities``
  keys, and the keys allowed only inside the ``opendsr.mparticle.com`` extension (``mpid``, ``other``…``other10``,
  ``mobile_number``, ``phone_number_2``/``_3``). The table spells one key ``roku_publishing_id``; its
  ``/discovery`` example and the OpenDSR spec say ``roku_publisher_id``, which is what is sent.
* **IDSync** ``developers/idsync/http-api/index.md`` ``known_identities`` (and ``static/downloads/
  identity-swagger.yaml``); ``other2``…``other10``, ``mobile_number``, ``phone_number_2``/``_3`` and ``alias`` are
  sent by mParticle's own SDKs (``mparticle-android-sdk`` ``MParticleIdentityClientImpl``, ``mparticle-web-sdk``
  ``src/types.ts``), so IDSync accepts them. An mpid is not a search key.
* **Events** ``developers/server/json-reference/index.md`` ``user_identities`` and ``device_info``; ``alias``,
  ``yahoo`` and ``facebook_custom_audience_id`` from ``static/schema/mparticle.inbound.eventsapi.schema.json``.
* **Profile** ``developers/profile-api/index.md`` (``customer_id`` and ``other`` in the resolve example;
  ``android_id``, ``google_advertising_id`` in the sample) and the identity types of ``developers/users/index.md``
  (the same host's Platform API). Only these can be resolved; ``other2``… and phone numbers are not named there.

``None`` means the API has no documented name for the type. mParticle documents no normalisation of identity
values (case, whitespace, phone formats are only discussed for downstream integrations), so values are sent
exactly as the host gives them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_CATEGORIES", "IDENTITY_TYPES", "MPID", "IdentityType", "identity_type", "type_names"]

MPID = "mpid"


@dataclass(frozen=True)
class IdentityType:
    """One mParticle identity type and its name in each API (``None``: the API has no name for it)."""

    name: str  #: mParticle's identity type name; also accepted as a request category
    device: bool  #: identifies a device (shared by whoever uses it), not a person
    dsr: str | None  #: OpenDSR v3 ``subject_identities`` key
    dsr_extension: bool  #: allowed only inside the ``opendsr.mparticle.com`` extension
    idsync: str | None  #: IDSync ``known_identities`` key
    events: str | None  #: Events API ``user_identities`` key (``device_info`` key for device ids)
    profile: str | None  #: Profile API identity ``type`` (resolve by immutable id)


def _other(n: int) -> IdentityType:
    return IdentityType(f"other{n}", False, f"other{n}", True, f"other{n}", f"other_id_{n}", None)


IDENTITY_TYPES: tuple[IdentityType, ...] = (
    IdentityType("customer_id", False, "controller_customer_id", False, "customerid", "customer_id", "customer_id"),
    IdentityType("email", False, "email", False, "email", "email", "email"),
    IdentityType("other", False, "other", True, "other", "other", "other"),
    *(_other(n) for n in range(2, 11)),
    IdentityType("mobile_number", False, "mobile_number", True, "mobile_number", "mobile_number", None),
    IdentityType("phone_number_2", False, "phone_number_2", True, "phone_number_2", "phone_number_2", None),
    IdentityType("phone_number_3", False, "phone_number_3", True, "phone_number_3", "phone_number_3", None),
    IdentityType(MPID, False, MPID, True, None, None, None),  # the Profile API reads a profile by mpid in its path
    IdentityType("ios_advertising_id", True, "ios_advertising_id", False, "ios_idfa", "ios_advertising_id",
                 "ios_advertising_id"),
    IdentityType("ios_idfv", True, "ios_vendor_id", False, "ios_idfv", "ios_idfv", "ios_vendor_id"),
    IdentityType("android_advertising_id", True, "android_advertising_id", False, "android_aaid",
                 "android_advertising_id", "google_advertising_id"),
    IdentityType("android_uuid", True, "android_id", False, "android_uuid", "android_uuid", "android_id"),
    IdentityType("fire_advertising_id", True, "fire_advertising_id", False, "fire_aid", "fire_advertising_id", None),
    IdentityType("roku_advertising_id", True, "roku_advertising_id", False, "roku_aid", "roku_advertising_id", None),
    IdentityType("roku_publisher_id", True, "roku_publisher_id", False, "roku_publisher_id", "roku_publisher_id",
                 None),
    IdentityType("microsoft_advertising_id", True, "microsoft_advertising_id", False, None,
                 "microsoft_advertising_id", None),
    IdentityType("microsoft_publisher_id", True, "microsoft_publisher_id", False, None, "microsoft_publisher_id",
                 None),
    IdentityType("push_token", True, None, False, "push_token", "push_token", "push_notification_token"),
    IdentityType("amp_id", True, None, False, "amp_id", "amp_id", "amp_id"),
    IdentityType("device_application_stamp", True, None, False, "device_application_stamp", None, None),
    IdentityType("facebook", False, None, False, "facebook", "facebook", "facebook_id"),
    IdentityType("facebook_custom_audience_id", False, None, False, "facebookcustomaudienceid",
                 "facebook_custom_audience_id", "facebook_custom_audience_id"),
    IdentityType("google", False, None, False, "google", "google", "google_id"),
    IdentityType("microsoft", False, None, False, "microsoft", "microsoft", "microsoft_id"),
    IdentityType("twitter", False, None, False, "twitter", "twitter", "twitter_id"),
    IdentityType("yahoo", False, None, False, "yahoo", "yahoo", "yahoo_id"),
    IdentityType("alias", False, None, False, "alias", "alias", None),
)

#: The host's identifier categories (the framework's request schema) and the mParticle type each one is by
#: default; the configuration's ``identities`` can change any of them (e.g. an app user id kept as ``other3``).
DEFAULT_CATEGORIES: dict[str, str] = {
    "email": "email",
    "phone": "mobile_number",
    "customer_id": "customer_id",
    "vendor_id": MPID,
    "ios_advertising_id": "ios_advertising_id",
    "ios_vendor_id": "ios_idfv",
    "android_advertising_id": "android_advertising_id",
    "android_id": "android_uuid",
    "fire_advertising_id": "fire_advertising_id",
    "roku_advertising_id": "roku_advertising_id",
    "roku_publisher_id": "roku_publisher_id",
    "microsoft_advertising_id": "microsoft_advertising_id",
    "microsoft_publisher_id": "microsoft_publisher_id",
    "push_token": "push_token",
}

_BY_NAME = {t.name: t for t in IDENTITY_TYPES}


def identity_type(name: str) -> IdentityType:
    """The identity type called ``name`` (``KeyError`` if mParticle has none by that name)."""
    return _BY_NAME[name]


def type_names() -> list[str]:
    """Every identity type name, in table order."""
    return [t.name for t in IDENTITY_TYPES]


assert set(DEFAULT_CATEGORIES.values()) <= set(_BY_NAME)

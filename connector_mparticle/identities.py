"""mParticle names each identity type differently in each API: this is the one table of those names.

Sources (see shared/reference/mparticle-api.md): OpenDSR v3 ``subject_identities`` keys (top level, or only
inside the ``opendsr.mparticle.com`` extension), IDSync ``known_identities`` keys, and Events API
``user_identities`` keys (or ``device_info`` keys for device ids). ``None`` means the API has no documented
name for that type. The Events JSON reference spells the customer id ``customer_id`` while mParticle's
Python SDK sends ``customerid``; both are accepted by the sandbox, and the connector sends the documented one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IDENTITY_TYPES", "IdentityType", "by_dsr_key", "by_events_key", "by_idsync_key", "identity_type"]


@dataclass(frozen=True)
class IdentityType:
    """One mParticle identity type and its name in each API."""

    name: str  #: canonical name; also the request identifier category the connector accepts
    dsr: str | None  #: OpenDSR v3 subject_identities key
    dsr_extension_only: bool  #: allowed only inside the opendsr.mparticle.com extension
    idsync: str | None  #: IDSync known_identities key
    events: str | None  #: Events API user_identities key
    events_device: str | None = None  #: Events API device_info key (device ids)
    events_aliases: tuple[str, ...] = ()  #: other spellings seen from mParticle's own clients
    dsr_aliases: tuple[str, ...] = ()


IDENTITY_TYPES: tuple[IdentityType, ...] = (
    IdentityType("customer_id", "controller_customer_id", False, "customerid", "customer_id",
                 events_aliases=("customerid",)),
    IdentityType("email", "email", False, "email", "email"),
    IdentityType("other", "other", True, "other", "other"),
    *(IdentityType(f"other_id_{n}", f"other{n}", True, None, f"other_id_{n}") for n in range(2, 11)),
    IdentityType("mobile_number", "mobile_number", True, None, "mobile_number"),
    IdentityType("phone_number_2", "phone_number_2", True, None, "phone_number_2"),
    IdentityType("phone_number_3", "phone_number_3", True, None, "phone_number_3"),
    IdentityType("ios_idfa", "ios_advertising_id", False, "ios_idfa", None, "ios_advertising_id"),
    IdentityType("ios_idfv", "ios_vendor_id", False, "ios_idfv", None, "ios_idfv"),
    IdentityType("android_aaid", "android_advertising_id", False, "android_aaid", None, "android_advertising_id"),
    IdentityType("android_uuid", "android_id", False, "android_uuid", None, "android_uuid"),
    IdentityType("fire_aid", "fire_advertising_id", False, "fire_aid", None),
    IdentityType("roku_aid", "roku_advertising_id", False, "roku_aid", None),
    IdentityType("roku_publisher_id", "roku_publisher_id", False, "roku_publisher_id", None,
                 dsr_aliases=("roku_publishing_id",)),
    IdentityType("microsoft_aid", "microsoft_advertising_id", False, None, None),
    IdentityType("microsoft_publisher_id", "microsoft_publisher_id", False, None, None),
    IdentityType("push_token", None, False, "push_token", None, "push_token"),
    IdentityType("facebook", None, False, "facebook", "facebook"),
    IdentityType("google", None, False, "google", "google"),
    IdentityType("twitter", None, False, "twitter", "twitter"),
    IdentityType("yahoo", None, False, "yahoo", "yahoo"),
    IdentityType("microsoft", None, False, "microsoft", "microsoft"),
    IdentityType("mpid", "mpid", True, None, None),
)

_BY_NAME = {t.name: t for t in IDENTITY_TYPES}
_BY_DSR = {key: t for t in IDENTITY_TYPES for key in (t.dsr, *t.dsr_aliases) if key}
_BY_IDSYNC = {t.idsync: t for t in IDENTITY_TYPES if t.idsync}
_BY_EVENTS = {key: t for t in IDENTITY_TYPES for key in (t.events, *t.events_aliases) if key}


def identity_type(name: str) -> IdentityType:
    """The identity type with canonical ``name`` (``KeyError`` if unknown)."""
    return _BY_NAME[name]


def by_dsr_key(key: str) -> IdentityType | None:
    return _BY_DSR.get(key)


def by_idsync_key(key: str) -> IdentityType | None:
    return _BY_IDSYNC.get(key)


def by_events_key(key: str) -> IdentityType | None:
    return _BY_EVENTS.get(key)

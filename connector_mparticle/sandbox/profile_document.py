"""A profile as mParticle writes it out: in the Profile API's answers and as ``profile.jsonl`` in access results.

Shape from ``developers/profile-api/index.md`` (sample response) and from mParticle's sample access result
(``static/downloads/portability-response-sample.zip``, whose ``profile.jsonl`` holds the same fields with the
mpid under ``id``): identities are ``{type, encoding: "none", value}`` lists, audiences are
``{audience_id, audience_name, expiration_timestamp_ms}``. Consent is not part of it (the sample has none).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from connector_mparticle.sandbox.identity_types import by_name
from connector_mparticle.sandbox.records import Profile

__all__ = ["PROFILE_FIELDS", "profile_document"]

#: ``?fields=`` values the Profile API allows.
PROFILE_FIELDS = ("device_identities", "user_identities", "user_attributes", "audience_memberships", "attribution")


def _identities(profile: Profile, device: bool) -> list[dict[str, Any]]:
    out = []
    for name, value in sorted(profile.identities.items()):
        kind = by_name(name)
        if kind is not None and kind.device == device:
            out.append({"type": kind.profile or name, "encoding": "none", "value": value})
    return out


def profile_document(profile: Profile, fields: Iterable[str], audience_id: Callable[[str], int],
                     mpid_key: str = "mpid", account_attributes: dict[str, Any] | None = None,
                     exclusions: Collection[str] = ()) -> dict[str, Any]:
    """The profile with the requested ``fields`` (a subset of :data:`PROFILE_FIELDS`).

    The Profile API's sample has ``"mpid"`` and ``"account_userattributes": null``; the access-result sample
    has ``"id"`` and ``{}``: callers say which."""
    wanted = set(fields)
    document: dict[str, Any] = {
        mpid_key: profile.mpid,
        "created_timestamp_ms": profile.created_ms,
        "last_stored_timestamp_ms": profile.last_stored_ms,
        "is_opted_out": profile.is_opted_out,
        "limit_ad_tracking": profile.limit_ad_tracking,
    }
    if "device_identities" in wanted:
        document["device_identities"] = _identities(profile, device=True)
    if "user_identities" in wanted:
        document["user_identities"] = _identities(profile, device=False)
    if "user_attributes" in wanted:
        document["account_userattributes"] = account_attributes
        document["user_attributes"] = dict(profile.attributes)
    if "audience_memberships" in wanted:
        document["audience_memberships"] = [
            {"audience_id": audience_id(name), "audience_name": name, "expiration_timestamp_ms": None}
            for name in profile.in_audiences(exclusions)]
    if "attribution" in wanted:  # the page names the field but shows no example (docs silent on its shape)
        document["attribution"] = [dict(a) for a in profile.attribution]
    return document

"""What an Events API batch does to the profile it belongs to: user attributes set and deleted, the device's
ad-tracking setting, consent states (GDPR purposes only when the workspace defines them), opt-out and
attribution events; and why the historical endpoint would not process a batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from connector_mparticle.sandbox.records import Profile

__all__ = ["apply_attributes", "apply_consent", "apply_event", "historical_problem"]

_HISTORICAL_MIN_AGE_MS = 72 * 3600 * 1000  # developers/server/http: "less than 72 hours old" is not processed


def apply_attributes(profile: Profile, batch: Mapping[str, Any]) -> None:
    """A batch's user attributes (set, then deleted) and its device's ad-tracking setting."""
    profile.attributes.update(batch.get("user_attributes") or {})
    for name in batch.get("deleted_user_attributes") or []:
        profile.attributes.pop(name, None)
    device = batch.get("device_info") or {}
    if isinstance(device.get("limit_ad_tracking"), bool):
        profile.limit_ad_tracking = device["limit_ad_tracking"]


def apply_consent(profile: Profile, consent: Mapping[str, Any], gdpr_purposes: Collection[str], now: int) -> int:
    """Store a batch's consent states; return how many GDPR purposes were ignored as undefined."""
    ignored = 0
    for purpose, state in (consent.get("gdpr") or {}).items():
        # guides/data-privacy-controls: GDPR purposes must be defined in the workspace before use.
        if purpose.lower() in gdpr_purposes:
            profile.consent["gdpr"][purpose.lower()] = dict(state)
        else:
            profile.ignored_consent.append({"regulation": "gdpr", "purpose": purpose, "at_ms": now,
                                            "reason": "purpose not defined in the workspace"})
            ignored += 1
    for purpose, state in (consent.get("ccpa") or {}).items():
        profile.consent["ccpa"][purpose] = dict(state)  # data_sale_opt_out exists once CCPA is enabled
    return ignored


def apply_event(profile: Profile, event: Mapping[str, Any]) -> None:
    """An opt_out event sets the profile's opt-out; an attribution custom event adds install attribution."""
    data = event.get("data") or {}
    if event["event_type"] == "opt_out" and isinstance(data.get("is_opted_out"), bool):
        profile.is_opted_out = data["is_opted_out"]
    if (event["event_type"] == "custom_event" and data.get("custom_event_type") == "attribution"
            and data.get("event_name") == "attribution"):
        # json-reference "Attribution custom events": install attribution is stored on the profile.
        attrs = data.get("custom_attributes") or {}
        profile.attribution.append({"publisher": attrs.get("publisher"), "campaign": attrs.get("campaign"),
                                    "timestamp_unixtime_ms": data.get("timestamp_unixtime_ms")})


def historical_problem(batch: Mapping[str, Any], now_ms: int) -> str | None:
    """Why ``/v2/bulkevents/historical`` would not process a batch (developers/server/http), or None."""
    events = batch.get("events") or []
    if not events:
        return "the batch contains no events"
    for event in events:
        stamp = (event.get("data") or {}).get("timestamp_unixtime_ms")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            return "an event has no timestamp_unixtime_ms"
        if now_ms - stamp < _HISTORICAL_MIN_AGE_MS:
            return "an event is less than 72 hours old"
    return None

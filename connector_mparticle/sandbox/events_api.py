"""Events API v2: ``POST /v2/events`` (one batch) and ``POST /v2/bulkevents`` (up to 100 batches)."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from connector_mparticle.identities import IDENTITY_TYPES, by_events_key
from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.store import Profile, merge_consent

if TYPE_CHECKING:
    from connector_mparticle.sandbox.server import SandboxContext

__all__ = ["ROUTES", "batch_count", "events_error"]

MAX_BATCH_BYTES = 128 * 1024
MAX_BULK = 100
EVENT_TYPES = {"custom_event", "commerce_event", "session_start", "session_end", "screen_view", "uninstall",
               "crash_report", "opt_out", "push_registration", "application_state_transition", "push_message",
               "network_performance", "breadcrumb", "profile", "user_attribute_change", "user_identity_change"}
DEVICE_KEYS = {t.events_device: t for t in IDENTITY_TYPES if t.events_device}


class Invalid(ValueError):
    pass


def events_error(status: int, message: str) -> Reply:
    return Reply(status, {"errors": [{"code": "BAD_REQUEST" if status == 400 else "ERROR", "message": message}]})


def _consent(section: Any) -> None:
    if not isinstance(section, dict):
        raise Invalid("'consent_state' must be an object")
    unknown = sorted(set(section) - {"gdpr", "ccpa"})
    if unknown:
        raise Invalid(f"consent_state: unknown regulation(s) {', '.join(unknown)}")
    for regulation, purposes in section.items():
        if not isinstance(purposes, dict):
            raise Invalid(f"consent_state.{regulation} must be an object keyed by purpose")
        if regulation == "ccpa" and set(purposes) - {"data_sale_opt_out"}:
            raise Invalid("consent_state.ccpa only allows the purpose 'data_sale_opt_out'")
        for purpose, state in purposes.items():
            where = f"consent_state.{regulation}.{purpose}"
            if not isinstance(state, dict):
                raise Invalid(f"{where} must be an object")
            if not isinstance(state.get("consented"), bool):
                raise Invalid(f"{where}.consented is required and must be true or false")
            stamp = state.get("timestamp_unixtime_ms")
            if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
                raise Invalid(f"{where}.timestamp_unixtime_ms is required (the HTTP API does not fill it in)")
            for text in ("document", "location", "hardware_id"):
                if state.get(text) is not None and not isinstance(state[text], str):
                    raise Invalid(f"{where}.{text} must be a string or null")


def check_batch(batch: Any) -> dict[str, str]:
    """Validate one batch; return its identities by canonical name."""
    if not isinstance(batch, dict):
        raise Invalid("a batch must be a JSON object")
    if batch.get("environment", "production") not in ("production", "development"):
        raise Invalid("'environment' must be 'production' or 'development'")
    events = batch.get("events", [])
    if not isinstance(events, list):
        raise Invalid("'events' must be an array")
    for i, event in enumerate(events):
        if not isinstance(event, dict) or event.get("event_type") not in EVENT_TYPES:
            raise Invalid(f"events[{i}].event_type is missing or not a known event type")
        if not isinstance(event.get("data", {}), dict):
            raise Invalid(f"events[{i}].data must be an object")
    identities: dict[str, str] = {}
    user_identities = batch.get("user_identities") or {}
    if not isinstance(user_identities, dict):
        raise Invalid("'user_identities' must be an object")
    for key, value in user_identities.items():
        kind = by_events_key(key)
        if kind is None:
            raise Invalid(f"user_identities: unknown identity type '{key}'")
        if value is None:
            continue
        if not isinstance(value, str):
            raise Invalid(f"user_identities.{key} must be a string")
        identities[kind.name] = value
    device = batch.get("device_info") or {}
    if isinstance(device, dict):
        for key, value in device.items():
            if key in DEVICE_KEYS and isinstance(value, str) and value:
                identities[DEVICE_KEYS[key].name] = value
    if "mpid" in batch:
        mpid = batch["mpid"]
        if isinstance(mpid, bool) or not isinstance(mpid, (int, str)) or not str(mpid).lstrip("-").isdigit():
            raise Invalid("'mpid' must be a 64-bit integer")
    if "consent_state" in batch and batch["consent_state"] is not None:
        _consent(batch["consent_state"])
    for key in ("user_attributes", "device_info", "application_info", "integration_attributes"):
        if key in batch and batch[key] is not None and not isinstance(batch[key], dict):
            raise Invalid(f"'{key}' must be an object")
    return identities


def apply_batch(ctx: SandboxContext, batch: dict[str, Any], identities: dict[str, str], client: str) -> str:
    """Store the batch on its profile (found by mpid or identities, created if new). Returns what happened."""
    store = ctx.store
    source_id = batch.get("source_request_id")
    with store.lock:
        if isinstance(source_id, str) and source_id:
            if (client, source_id) in store.source_request_ids:
                store.stats["duplicate_batches_ignored"] += 1
                return "duplicate"
            store.source_request_ids.add((client, source_id))
        profile: Profile | None = None
        if "mpid" in batch:
            profile = store.profiles.get(int(batch["mpid"]))
        if profile is None and identities:
            matches = store.match(identities)
            profile = matches[0] if matches else None
        if profile is None:
            if not identities and "mpid" not in batch:
                return "unattributed"
            profile = store.add_profile(identities, mpid=int(batch["mpid"]) if "mpid" in batch else None)
        for name, value in identities.items():
            profile.identities.setdefault(name, value)
        now_ms = int(time.time() * 1000)
        profile.attributes.update(batch.get("user_attributes") or {})
        for name in batch.get("deleted_user_attributes") or []:
            profile.attributes.pop(name, None)
        if batch.get("consent_state"):
            merge_consent(profile.consent, batch["consent_state"], now_ms)
        stored = copy.deepcopy(batch)
        stored["received_timestamp_unixtime_ms"] = now_ms
        profile.batches.append(stored)
        store.stats["batches_stored"] += 1
        return "stored"


def batch_count(call: Call) -> int:
    """How many batches a call uploads (the Events limit counts batches)."""
    if call.path.rstrip("/").endswith("bulkevents"):
        try:
            body = call.json()
        except BadJson:
            return 1
        return max(1, len(body)) if isinstance(body, list) else 1
    return 1


def _too_large(ctx: SandboxContext, call: Call) -> Reply | None:
    if len(call.body) > ctx.config.max_request_bytes:
        return events_error(413, f"the request is larger than {ctx.config.max_request_bytes // 1024} KB")
    return None


def upload(ctx: SandboxContext, call: Call) -> Reply:
    if (reply := _too_large(ctx, call)) is not None:
        return reply
    try:
        batch = call.json()
        if len(call.body) > MAX_BATCH_BYTES:
            raise Invalid("a batch must be at most 128 KB")
        identities = check_batch(batch)
    except (BadJson, Invalid) as exc:
        return events_error(400, str(exc))
    apply_batch(ctx, batch, identities, call.client)
    return Reply(202, None)


def bulk_upload(ctx: SandboxContext, call: Call) -> Reply:
    if (reply := _too_large(ctx, call)) is not None:
        return reply
    try:
        batches = call.json()
    except BadJson as exc:
        return events_error(400, str(exc))
    if not isinstance(batches, list) or not batches:
        return events_error(400, "the body must be a non-empty array of batches")
    if len(batches) > MAX_BULK:
        return events_error(400, f"at most {MAX_BULK} batches per request")
    for batch in batches:  # like mParticle, a bad batch does not fail the others: 202 regardless
        try:
            identities = check_batch(batch)
        except Invalid:
            continue
        apply_batch(ctx, batch, identities, call.client)
    return Reply(202, None)


ROUTES = [
    Route("POST", r"/v2/events/?", "events", upload, "input"),
    Route("POST", r"/v2/bulkevents/?", "events", bulk_upload, "input"),
]

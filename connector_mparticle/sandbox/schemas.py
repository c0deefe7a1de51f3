"""JSON Schemas for every request body the sandbox accepts, written from mParticle's documents.

Each schema cites its source. They check the shape of a body; rules a schema cannot say well (UUID versions,
identity names per API, "an mpid must be alone") are checked by the route after it. A body that fails gets
a 400 with the first problem found, as ``$.path: message``.

The Events batch schema follows the JSON reference page (``developers/server/json-reference/index.md``) and the
published ``static/schema/mparticle.inbound.eventsapi.schema.json`` for field names, with two deliberate
differences from that file: ``consent_state`` has the documented ``gdpr`` *and* ``ccpa`` sections (the file
still allows only ``gdpr``), and event data is held to the fields the reference page marks "required" (the
file also requires read-only fields such as ``session_id`` that mParticle's own Python SDK never sends).
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from connector_mparticle.sandbox.identity_types import DEVICE_INFO_KEYS

__all__ = ["EVENT_TYPES", "SCHEMAS", "batch_problem", "first_problem"]

_NULLABLE_STRING = {"type": ["string", "null"]}
_ENVIRONMENT = {"enum": ["production", "development"]}

# -- OpenDSR v3 (developers/dsr-api/v3/index.md) -------------------------------------------------------------

_DSR_IDENTITY = {
    "type": "object", "required": ["value"], "additionalProperties": False,
    "properties": {"value": {"type": "string", "minLength": 1}, "encoding": {"const": "raw"}},
}
_DSR_IDENTITIES = {"type": "object", "additionalProperties": _DSR_IDENTITY}
DSR_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["regulation", "subject_request_id", "subject_request_type", "submitted_time"],
    "additionalProperties": False,
    "properties": {
        "regulation": {"enum": ["gdpr", "ccpa"]},
        "subject_request_id": {"type": "string", "minLength": 1},
        "subject_request_type": {"enum": ["access", "portability", "erasure"]},
        "submitted_time": {"type": "string", "minLength": 1},
        "skip_waiting_period": {"type": "boolean"},
        "subject_identities": {"anyOf": [_DSR_IDENTITIES, {"type": "null"}]},
        "api_version": {"const": "3.0"},  # "Valid value is 3.0"
        "status_callback_urls": {"type": "array", "items": {"type": "string", "pattern": "^https?://"}},
        "group_id": {"type": "string"},
        "extensions": {
            "type": "object",
            "properties": {"opendsr.mparticle.com": {
                "type": "object", "additionalProperties": False,
                "properties": {"skip_waiting_period": {"type": "boolean"}, "subject_identities": _DSR_IDENTITIES},
            }},
            "additionalProperties": {"type": "object"},  # other processors' extensions are theirs to read
        },
    },
}

# -- IDSync (static/downloads/identity-swagger.yaml; developers/idsync/http-api/index.md) ----------------------

_IDSYNC_BASE = {
    "client_sdk": {"type": ["object", "null"], "properties": {
        "platform": {"enum": ["ios", "android", "web", "tvos", "roku", "alexa", "smart_tv", "fire", "xbox", "other"]},
        "sdk_vendor": _NULLABLE_STRING, "sdk_version": _NULLABLE_STRING}},
    "context": _NULLABLE_STRING,
    "environment": _ENVIRONMENT,
    "request_id": _NULLABLE_STRING,
    "request_timestamp_ms": {"type": ["integer", "null"]},
}
IDSYNC_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["environment", "known_identities"],
    "properties": {
        **_IDSYNC_BASE,
        # The docs type it as a string; mParticle's Android SDK sends a number; the web SDK sends null at first.
        "previous_mpid": {"type": ["string", "integer", "null"]},
        # Values are non-empty strings; the web SDK sends null for an identity it no longer has (ignored here).
        "known_identities": {"type": "object", "minProperties": 1,
                             "additionalProperties": {"type": ["string", "null"], "minLength": 1}},
    },
}
IDSYNC_MODIFY: dict[str, Any] = {
    "type": "object", "required": ["environment", "identity_changes"],
    "properties": {
        **_IDSYNC_BASE,
        "identity_changes": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["identity_type", "old_value", "new_value"],
            "properties": {"identity_type": {"type": "string"}, "old_value": _NULLABLE_STRING,
                           "new_value": _NULLABLE_STRING},
        }},
    },
}

# -- Events API v2 (developers/server/json-reference/index.md; the published Events JSON schema) -------------

#: json-reference's event_type table plus the published schema's EventType enum (first_run, pre_attribution,
#: profile, push_reaction, user_attribute_change, user_identity_change), which mParticle's Python SDK also sends.
EVENT_TYPES = ("custom_event", "commerce_event", "session_start", "session_end", "screen_view", "uninstall",
               "crash_report", "opt_out", "first_run", "pre_attribution", "push_registration",
               "application_state_transition", "push_message", "network_performance", "breadcrumb", "profile",
               "push_reaction", "user_attribute_change", "user_identity_change")
#: Event data fields the JSON reference marks "required" (by event_type).
_REQUIRED_DATA: dict[str, dict[str, Any]] = {
    "custom_event": {"event_name": {"type": "string"}, "custom_event_type": {"type": "string"}},
    "push_registration": {"register": {"type": "boolean"}, "registration_token": {"type": "string"}},
    "application_state_transition": {"application_transition_type": {"type": "string"}},
    "push_message": {"push_message_type": {"type": "string"}},
    "breadcrumb": {"label": {"type": "string"}},
}
_ACTION = {"type": ["object", "null"], "required": ["action"], "properties": {"action": {"type": "string"}}}
_REQUIRED_DATA["commerce_event"] = {"product_action": _ACTION, "promotion_action": _ACTION}
#: One event's envelope; its data is checked by :data:`EVENT_DATA` for its type (a schema per type validates
#: far faster than one schema of conditionals).
EVENT: dict[str, Any] = {
    "type": "object", "required": ["event_type"], "additionalProperties": False,
    "properties": {"event_type": {"enum": list(EVENT_TYPES)}, "data": {"type": ["object", "null"]}},
}
EVENT_DATA: dict[str, dict[str, Any]] = {
    kind: {"type": "object", "properties": fields,
           "required": sorted(f for f in fields if kind != "commerce_event")}
    for kind, fields in _REQUIRED_DATA.items()
}
#: data_privacy_controls / json-reference consent_state: consented and timestamp_unixtime_ms are required (the
#: HTTP API does not fill the timestamp in); hardware_id is "Required" in one table but absent from every
#: example, so it is optional here.
_CONSENT_STATE = {
    "type": "object", "required": ["consented", "timestamp_unixtime_ms"], "additionalProperties": False,
    "properties": {"consented": {"type": "boolean"}, "timestamp_unixtime_ms": {"type": "integer", "minimum": 1},
                   "document": _NULLABLE_STRING, "location": _NULLABLE_STRING, "hardware_id": _NULLABLE_STRING,
                   "regulation": _NULLABLE_STRING, "purpose": _NULLABLE_STRING},
}
CONSENT: dict[str, Any] = {
    "type": ["object", "null"], "additionalProperties": False,
    "properties": {
        "gdpr": {"type": ["object", "null"], "additionalProperties": _CONSENT_STATE},
        # "For CCPA, only the below purpose is allowed" (json-reference consent_state).
        "ccpa": {"type": ["object", "null"], "additionalProperties": False,
                 "properties": {"data_sale_opt_out": _CONSENT_STATE}},
    },
}
_OBJECT = {"type": ["object", "null"]}
_MPID = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]{1,19}$"}, {"type": "null"}]}
EVENTS_BATCH: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "events": {"type": ["array", "null"], "items": {"type": "object"}},  # each checked by event_problem
        "source_request_id": _NULLABLE_STRING,
        "environment": _ENVIRONMENT,  # json-reference: defaults to production when absent
        "user_identities": {"type": ["object", "null"], "additionalProperties": _NULLABLE_STRING},
        "device_info": {"type": ["object", "null"],
                        "properties": {key: _NULLABLE_STRING for key in DEVICE_INFO_KEYS}},  # the device ids
        "application_info": _OBJECT,
        "user_attributes": _OBJECT,
        "deleted_user_attributes": {"type": ["array", "null"], "items": {"type": "string"}},
        "partner_identities": _OBJECT,
        "integration_attributes": _OBJECT,
        "consent_state": CONSENT,
        "context": _OBJECT,
        "mpid": _MPID,
        "mp_deviceid": _NULLABLE_STRING,
        "ip": _NULLABLE_STRING,
        "schema_version": {"type": ["integer", "null"]},
        # Further batch fields of the published schema and mParticle's Python SDK's Batch model.
        "api_key": _NULLABLE_STRING, "api_keys": {"type": ["array", "null"]}, "partner_identity": _NULLABLE_STRING,
        "source_info": _OBJECT, "attribution_info": _OBJECT, "timestamp_unixtime_ms": {"type": ["integer", "null"]},
        "batch_id": {"type": ["integer", "null"]}, "origin_mpid": {"type": ["integer", "null"]},
        "sdk_version": _NULLABLE_STRING, "job_id": _NULLABLE_STRING,
    },
}
EVENTS_BULK: dict[str, Any] = {"type": "array", "minItems": 1, "maxItems": 100}  # developers/server/http: <= 100

# -- Profile API (developers/profile-api/index.md) -----------------------------------------------------------

PROFILE_RESOLVE: dict[str, Any] = {
    "type": "object", "required": ["environment_type", "identity"],
    "properties": {
        "environment_type": _ENVIRONMENT,
        "identity": {"type": "object", "required": ["type", "value"], "properties": {
            "type": {"type": "string"}, "value": {"type": "string", "minLength": 1}}},
    },
}

# -- OAuth token endpoint (developers/profile-api "Authentication"; RFC 6749 section 4.4) ----------------------

#: A JSON token request is an object; its values are read as strings, like a form body's.
OAUTH_TOKEN: dict[str, Any] = {"type": "object"}

# -- The sandbox's own admin API (documented in the README) ------------------------------------------------------

_SECONDS = {"type": "number", "minimum": 0}
_NAMES = {"type": "array", "items": {"type": "string"}}
ADMIN_PROFILE: dict[str, Any] = {
    "type": "object", "required": ["identities"], "additionalProperties": False,
    "properties": {
        "identities": {"type": "object", "minProperties": 1,
                       "additionalProperties": {"type": "string", "minLength": 1}},
        "attributes": _OBJECT, "consent": CONSENT,
        "batches": {"type": ["array", "null"], "items": {"type": "object"}},
        "audiences": {"type": ["array", "null"], "items": {"type": "string"}},
        "mpid": _MPID,
    },
}
ADMIN_STATUS: dict[str, Any] = {
    "type": "object", "required": ["status"], "additionalProperties": False,
    "properties": {"status": {"enum": ["pending", "in_progress", "completed", "cancelled"]}},
}
ADMIN_LIMITS: dict[str, Any] = {
    "type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "properties": {"limit": {"type": "number", "exclusiveMinimum": 0},
                       "window_seconds": {"type": "number", "exclusiveMinimum": 0},
                       "scope": {"enum": ["org", "account", "app", "feed", "workspace"]},
                       "external_share": {"type": "number", "minimum": 0, "maximum": 1},
                       "acceleration": {"type": ["number", "null"], "minimum": 0}},
    },
}
ADMIN_FAULTS: dict[str, Any] = {
    "type": "object", "additionalProperties": {
        "type": "object",
        "properties": {"error_statuses": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                       "force_429": {"type": "integer", "minimum": 0},
                       "retry_after": {"type": "integer", "minimum": 0},
                       "latency_ms": _SECONDS,
                       "foreign_results_url": {"type": "boolean"},
                       "signature": {"type": "string"}},
    },
}
_DURATION = {"type": "object", "required": ["pending", "in_progress"], "additionalProperties": False,
             "properties": {"pending": _SECONDS, "in_progress": _SECONDS}}
ADMIN_DURATIONS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "durations": {"type": "object", "additionalProperties": False,
                      "properties": {"access": _DURATION, "erasure": _DURATION}},
        "overrun_seconds": _SECONDS, "results_ttl_seconds": _SECONDS,
    },
}
ADMIN_WORKSPACE: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "identity": {"type": "object", "additionalProperties": False, "properties": {
            "login_ids": _NAMES, "unique_ids": _NAMES, "immutable_ids": _NAMES, "hierarchy": _NAMES,
            "conflicts": {"enum": ["none", "user_identities", "unique_ids"]}}},
        "gdpr_purposes": _NAMES,
        "include_live_profile": {"type": "boolean"},
        "forwarding_partners": {"type": "array", "items": {
            "type": "object", "required": ["domain", "name"], "additionalProperties": False,
            "properties": {"domain": {"type": "string"}, "name": {"type": "string"},
                           "outcome": {"enum": ["sent", "failed", "skipped"]}, "status_message": _NULLABLE_STRING}}},
        "oauth_apis": {"type": "array", "items": {"enum": ["dsr", "events", "identity"]}},
        "profile_not_found_status": {"enum": [400, 404]},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "event": EVENT, **{f"event_data.{kind}": schema for kind, schema in EVENT_DATA.items()},
    "dsr_request": DSR_REQUEST, "idsync_request": IDSYNC_REQUEST, "idsync_modify": IDSYNC_MODIFY,
    "events_batch": EVENTS_BATCH, "events_bulk": EVENTS_BULK, "profile_resolve": PROFILE_RESOLVE,
    "oauth_token": OAUTH_TOKEN,
    "admin_profile": ADMIN_PROFILE, "admin_status": ADMIN_STATUS, "admin_limits": ADMIN_LIMITS,
    "admin_faults": ADMIN_FAULTS, "admin_durations": ADMIN_DURATIONS, "admin_workspace": ADMIN_WORKSPACE,
}
for _schema in SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}


def _where(prefix: str, error: ValidationError) -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def first_problem(schema: str, document: Any, where: str = "$") -> str | None:
    """The most relevant reason ``document`` does not fit ``schema`` (``$.path: message``), or None."""
    error = best_match(_VALIDATORS[schema].iter_errors(document))
    if error is None:
        return None
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"{_where(where, error)}: {message}"


def batch_problem(batch: Any) -> str | None:
    """The first reason an Events batch does not fit :data:`EVENTS_BATCH` and, event by event, :data:`EVENT`
    and the data its type requires; or None."""
    problem = first_problem("events_batch", batch)
    if problem is not None:
        return problem
    for i, event in enumerate(batch.get("events") or []):
        if (problem := first_problem("event", event, f"$.events[{i}]")) is not None:
            return problem
        if event["event_type"] in EVENT_DATA and (problem := first_problem(
                f"event_data.{event['event_type']}", event.get("data"), f"$.events[{i}].data")) is not None:
            return problem
    return None

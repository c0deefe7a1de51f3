"""JSON Schemas for every request body the sandbox accepts, written from mParticle's documents.

Each schema cites its source. They check the shape of a body; rules a schema cannot say well (UUID versions,
identity names per API, "an mpid must be alone") are checked by the route after it. A body that fails gets
a 400 with the first problem found, as ``$.path: message``.

Events batches are not here: :mod:`~connector_mparticle.sandbox.events_schema` checks them against mParticle's
published schema itself, with the documented gaps filled in.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from connector_mparticle.sandbox.events_schema import consent_state_schema
from connector_mparticle.sandbox.json_problems import describe

__all__ = ["SCHEMAS", "first_problem"]

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

# -- Events API v2: see events_schema (mParticle's published schema, with the documented gaps filled in) -------

_OBJECT = {"type": ["object", "null"]}
_MPID = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]{1,19}$"}, {"type": "null"}]}
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
        "attributes": _OBJECT, "consent": consent_state_schema(),
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
        "idsync_key_only": {"type": "boolean"},
        "audience_exclusions": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 256}},
    },
}

ADMIN_SHAPES: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"variation": {"type": "boolean"}, "seed": {"type": "integer"}},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "dsr_request": DSR_REQUEST, "idsync_request": IDSYNC_REQUEST, "idsync_modify": IDSYNC_MODIFY,
    "events_bulk": EVENTS_BULK, "profile_resolve": PROFILE_RESOLVE,
    "oauth_token": OAUTH_TOKEN,
    "admin_profile": ADMIN_PROFILE, "admin_status": ADMIN_STATUS, "admin_limits": ADMIN_LIMITS,
    "admin_faults": ADMIN_FAULTS, "admin_durations": ADMIN_DURATIONS, "admin_workspace": ADMIN_WORKSPACE,
    "admin_shapes": ADMIN_SHAPES,
}
for _schema in SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}


def first_problem(schema: str, document: Any, where: str = "$") -> str | None:
    """The most relevant reason ``document`` does not fit ``schema`` (``$.path: message``), or None."""
    return describe(_VALIDATORS[schema].iter_errors(document), where)

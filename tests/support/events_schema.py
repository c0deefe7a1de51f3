"""A validator for Events API batches, written from mParticle's published JSON schema.

Source: ``mParticle/docs`` ``static/schema/mparticle.inbound.eventsapi.schema.json`` (draft-07), read with the
look-up tools and rewritten here by hand (the file is not copied): the batch's properties and their types,
``additionalProperties: false`` at the top level and in ``user_identities``, ``environment`` required and one
of ``development``/``production``, the ``EventType`` enum, the scalar definitions (``String`` also allows null,
booleans and numbers; ``Integer`` allows null).

One deliberate correction, made explicitly: the published ``ConsentState`` is out of date. It allows only a
``gdpr`` object (required, ``additionalProperties: false``) whose purpose states require only ``consented``,
so every CCPA opt-out (``consent_state.ccpa.data_sale_opt_out``, documented in ``json-reference`` and in
``guides/data-privacy-controls``) would fail it. :data:`PUBLISHED_CONSENT_STATE` keeps the published form
(so a test can show the problem); :data:`CONSENT_STATE` is the documented one used for validation: ``gdpr``
purposes and ``ccpa.data_sale_opt_out``, each state with ``consented`` and ``timestamp_unixtime_ms`` required.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator

STRING: dict[str, Any] = {"type": ["string", "null", "boolean", "integer", "number"]}
INTEGER: dict[str, Any] = {"type": ["integer", "null"]}
BOOLEAN: dict[str, Any] = {"type": ["boolean", "null"]}
OBJECT: dict[str, Any] = {"type": ["object", "null"]}
UUID: dict[str, Any] = {"type": ["string", "null"],
                        "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"}

EVENT_TYPES = ["session_start", "session_end", "screen_view", "custom_event", "crash_report", "opt_out", "first_run",
               "pre_attribution", "push_registration", "application_state_transition", "push_message",
               "network_performance", "breadcrumb", "profile", "push_reaction", "commerce_event",
               "user_attribute_change", "user_identity_change", "uninstall"]
USER_IDENTITIES = ["other", "customer_id", "facebook", "twitter", "google", "microsoft", "yahoo", "email", "alias",
                   "facebook_custom_audience_id", "other_id_2", "other_id_3", "other_id_4"]

_PUBLISHED_PURPOSE = {"type": "object", "required": ["consented"], "additionalProperties": False, "properties": {
    "regulation": STRING, "document": STRING, "consented": BOOLEAN, "timestamp_unixtime_ms": INTEGER,
    "location": STRING, "hardware_id": STRING}}
#: The published definition, kept to show why it cannot be used as it stands.
PUBLISHED_CONSENT_STATE: dict[str, Any] = {
    "type": "object", "required": ["gdpr"], "additionalProperties": False,
    "properties": {"gdpr": {"type": "object", "additionalProperties": _PUBLISHED_PURPOSE}},
}
_PURPOSE = {**_PUBLISHED_PURPOSE, "required": ["consented", "timestamp_unixtime_ms"],
            "properties": {**_PUBLISHED_PURPOSE["properties"], "consented": {"type": "boolean"},
                           "timestamp_unixtime_ms": {"type": "integer"}}}
#: The documented consent_state (json-reference ``consent_state``; guides/data-privacy-controls).
CONSENT_STATE: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {"gdpr": {"type": "object", "additionalProperties": _PURPOSE},
                   "ccpa": {"type": "object", "additionalProperties": False,
                            "properties": {"data_sale_opt_out": _PURPOSE}}},
}

_EVENT = {
    "type": "object", "required": ["event_type"], "additionalProperties": False,
    "properties": {"event_type": {"enum": EVENT_TYPES}, "data": {"type": "object"}},
    "allOf": [{"if": {"properties": {"event_type": {"const": "custom_event"}}},
               "then": {"properties": {"data": {"required": ["custom_event_type", "event_name"]}}}}],
}


def batch_schema(consent_state: dict[str, Any] = CONSENT_STATE) -> dict[str, Any]:
    """The published batch schema, with ``consent_state`` as given."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object", "required": ["environment"], "additionalProperties": False,
        "properties": {
            "source_request_id": STRING,
            "events": {"type": ["array", "null"], "items": _EVENT},
            "device_info": OBJECT, "application_info": OBJECT,
            "user_attributes": OBJECT,
            "deleted_user_attributes": {"type": ["array", "null"], "items": {"type": "string"}},
            "user_identities": {"type": ["object", "null"], "additionalProperties": False,
                                "properties": {name: STRING for name in USER_IDENTITIES}},
            "environment": {"type": "string", "enum": ["development", "production"]},
            "api_key": STRING, "api_keys": {"type": ["array", "null"], "items": {"type": "string"}},
            "ip": {"type": ["string", "null"]},
            "integration_attributes": OBJECT, "context": OBJECT, "partner_identity": STRING, "source_info": OBJECT,
            "mp_deviceid": UUID, "attribution_info": OBJECT, "timestamp_unixtime_ms": INTEGER, "batch_id": INTEGER,
            "mpid": INTEGER, "origin_mpid": INTEGER, "sdk_version": STRING, "consent_state": consent_state,
            "job_id": STRING,
        },
    }


BATCH_VALIDATOR = Draft7Validator(batch_schema())


def problems(batch: Any, validator: Draft7Validator = BATCH_VALIDATOR) -> list[str]:
    """Every way ``batch`` breaks the schema, as ``path: message``."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in sorted(validator.iter_errors(batch), key=lambda e: list(map(str, e.absolute_path)))]

"""What an Events API batch may hold: mParticle's published JSON Schema, with the documented gaps filled in.

The schema itself ships unchanged in ``published/mparticle.inbound.eventsapi.schema.json`` (``mParticle/docs``
``static/schema/``, served at ``https://docs.mparticle.com/schema/mparticle.inbound.eventsapi.schema.json``;
``published/SOURCE.json`` records the commit, the date and a digest). ``developers/server/json-reference``
offers it "to validate your JSON prior to upload", so the sandbox refuses what it refuses: its closed value lists
(event types, custom event types, product and promotion actions, transition types, push message types, device
platforms, source channels), its formats (``ip`` as IPv4/IPv6, device ids and ``mp_deviceid`` as UUIDs, ``mpid``
and timestamps as integers) and every key it does not list (``additionalProperties: false`` on the batch,
``user_identities``, ``device_info``, ``application_info``, product and promotion actions, consent states).

Where mParticle's other documents contradict the file, the documents win; each correction is one :class:`Gap`
in :data:`GAPS`, with its source, applied to a copy of the file (never to the file):

- the file's ``consent_state`` is one ``gdpr`` state and nothing else; the documented form has ``gdpr`` purposes
  *and* ``ccpa.data_sale_opt_out``, each with ``consented`` and ``timestamp_unixtime_ms`` required;
- ``user_identities`` the JSON reference documents but the file lacks, and ``partner_identities``/
  ``schema_version``; ``environment`` optional (the reference gives it a default, ``production``);
- fields the file requires that the JSON reference calls optional or read-only, or that mParticle's own Python
  SDK does not send ("mParticle's server-side SDKs are designed to generate correct JSON in all cases",
  ``json-reference`` "JSON Schema Validation").

The file applies ``oneOf`` over one definition per event type, each fixing ``event_type`` to one value; the
sandbox picks the definition by ``event_type`` instead (the same verdict, a clearer message, far faster).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator

from connector_mparticle.sandbox.json_problems import describe

__all__ = ["GAPS", "PUBLISHED_FILE", "Gap", "batch_problem", "consent_state_schema", "corrected_schema",
           "event_types", "published_schema"]

PUBLISHED_FILE = "published/mparticle.inbound.eventsapi.schema.json"
_JSON_REFERENCE = "src/pages/developers/server/json-reference/index.md"
_SDK = "mParticle/mparticle-python-sdk (the official Events API client; json-reference: its JSON is correct)"
Schema = dict[str, Any]


def published_schema() -> Schema:
    """The published schema exactly as shipped."""
    text = resources.files("connector_mparticle.sandbox").joinpath(PUBLISHED_FILE).read_text(encoding="utf-8")
    loaded: Schema = json.loads(text)
    return loaded


@dataclass(frozen=True)
class Gap:
    """One documented correction of the published schema."""

    where: str  #: what it changes
    change: str  #: how
    source: str  #: where mParticle documents it
    apply: Callable[[Schema], None]


def _data(schema: Schema, definition: str) -> Schema:
    """The event-specific part of an event definition's ``data`` (the second member of its ``allOf``)."""
    data: Schema = schema["definitions"][definition]["properties"]["data"]["allOf"][1]
    return data


def _consent(schema: Schema) -> None:
    state = copy.deepcopy(schema["definitions"]["GDPRConsentState"])
    state.update(type="object", required=["consented", "timestamp_unixtime_ms"])
    state["properties"].update(consented={"type": "boolean"}, timestamp_unixtime_ms={"type": "integer"})
    schema["definitions"]["ConsentStateEntry"] = state
    entry = {"$ref": "#/definitions/ConsentStateEntry"}
    schema["definitions"]["ConsentState"] = {
        "type": ["object", "null"], "additionalProperties": False,
        "properties": {"gdpr": {"type": ["object", "null"], "additionalProperties": entry},
                       "ccpa": {"type": ["object", "null"], "additionalProperties": False,
                                "properties": {"data_sale_opt_out": entry}}}}


def _user_identities(schema: Schema) -> None:
    names = ["mobile_number", "phone_number_2", "phone_number_3", *(f"other_id_{n}" for n in range(5, 11)),
             "customerid"]
    schema["properties"]["user_identities"]["properties"].update({n: {"$ref": "#/definitions/String"} for n in names})


def _environment(schema: Schema) -> None:
    schema["required"] = [name for name in schema["required"] if name != "environment"]


def _batch_fields(schema: Schema) -> None:
    schema["properties"]["partner_identities"] = {"type": ["object", "null"],
                                                  "additionalProperties": {"$ref": "#/definitions/String"}}
    schema["properties"]["schema_version"] = {"$ref": "#/definitions/Integer"}


def _required(definition: str, fields: list[str]) -> Callable[[Schema], None]:
    def apply(schema: Schema) -> None:
        _data(schema, definition)["required"] = fields
    return apply


def _attribution(schema: Schema) -> None:
    _data(schema, "CustomEvent")["properties"]["custom_event_type"]["enum"].append("attribution")


def _network_performance(schema: Schema) -> None:
    data = _data(schema, "NetworkPerformanceEvent")
    data["required"] = []
    data["properties"]["response_code"] = {"type": ["integer", "string", "null"]}


def _untyped_events(schema: Schema) -> None:
    for name, kind in (("PreAttributionEvent", "pre_attribution"), ("PushReactionEvent", "push_reaction")):
        schema["definitions"][name] = {"type": "object", "properties": {
            "data": {"$ref": "#/definitions/EventData"}, "event_type": {"type": "string", "enum": [kind]}}}
        schema["properties"]["events"]["items"]["oneOf"].append({"$ref": f"#/definitions/{name}"})


#: The corrections, in the order they are applied.
GAPS: tuple[Gap, ...] = (
    Gap("consent_state", "gdpr purposes and ccpa.data_sale_opt_out; consented and timestamp_unixtime_ms required",
        f"{_JSON_REFERENCE} consent_state; src/pages/guides/data-privacy-controls/index.md", _consent),
    Gap("user_identities", "adds mobile_number, phone_number_2/3, other_id_5..10, and the SDK's customerid",
        f"{_JSON_REFERENCE} user_identities; {_SDK} models/user_identities.py", _user_identities),
    Gap("batch", "adds partner_identities and schema_version", f"{_JSON_REFERENCE} Overall Structure",
        _batch_fields),
    Gap("environment", "not required (the file requires it; the reference gives it a default: production)",
        f"{_JSON_REFERENCE} Overall Structure", _environment),
    Gap("custom_event_type", "adds attribution (install, re-engagement and engagement attribution events)",
        f"{_JSON_REFERENCE} custom_event, \"Attribution custom events\"", _attribution),
    Gap("session_start data", "session_id not required (read only)", f"{_JSON_REFERENCE} common event data; {_SDK}",
        _required("SessionStartEvent", [])),
    Gap("session_end data", "session_duration_ms not required", f"{_JSON_REFERENCE} session_end",
        _required("SessionEndEvent", [])),
    Gap("screen_view data", "screen_name not required", f"{_JSON_REFERENCE} screen_view",
        _required("ScreenViewEvent", [])),
    Gap("opt_out data", "is_opted_out not required (\"suggested, false by default\")",
        f"{_JSON_REFERENCE} opt_out", _required("OptOutEvent", [])),
    Gap("push_message data", "only push_message_type required", f"{_JSON_REFERENCE} push_message; {_SDK}",
        _required("PushMessageEvent", ["push_message_type"])),
    Gap("network_performance data", "url and response_code not required; response_code a string or an integer",
        f"{_JSON_REFERENCE} network_performance; {_SDK}", _network_performance),
    Gap("profile data", "only profile_event_type required (previous_mpid and current_mpid are mParticle's)",
        f"{_SDK} models/profile_event.py", _required("ProfileEvent", ["profile_event_type"])),
    Gap("user_attribute_change data", "nothing required", f"{_SDK} models/user_attribute_change_event.py",
        _required("UserAttributeChangeEvent", [])),
    Gap("pre_attribution and push_reaction events", "listed in EventType without a definition: EventData",
        "static/schema/mparticle.inbound.eventsapi.schema.json EventType", _untyped_events),
)


@cache
def corrected_schema() -> Schema:
    """The published schema with every :data:`GAPS` correction applied (built once; callers must not change it)."""
    schema = published_schema()
    for gap in GAPS:
        gap.apply(schema)
    return schema


def event_types() -> dict[str, str]:
    """``event_type`` -> the name of its definition, from the schema's ``events.items.oneOf``."""
    schema = corrected_schema()
    out = {}
    for member in schema["properties"]["events"]["items"]["oneOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        [kind] = schema["definitions"][name]["properties"]["event_type"]["enum"]
        out[kind] = name
    return out


def _event_validator(schema: Schema, definition: str) -> Draft7Validator:
    """A validator for one event definition. An event whose type requires data fields must carry ``data``
    as an object (the published definitions would let ``data`` be left out or be null)."""
    target: Schema = {"$ref": f"#/definitions/{definition}"}
    data = schema["definitions"][definition]["properties"]["data"]
    if data.get("allOf") and data["allOf"][1].get("required"):
        target = {"allOf": [target, {"required": ["data"], "properties": {"data": {"type": "object"}}}]}
    return Draft7Validator({**target, "definitions": schema["definitions"]},
                           format_checker=Draft7Validator.FORMAT_CHECKER)


@cache
def _validators() -> tuple[Draft7Validator, dict[str, Draft7Validator]]:
    schema = corrected_schema()
    batch = copy.deepcopy(schema)
    batch.pop("$id")
    batch["properties"]["events"]["items"] = {
        "type": "object", "required": ["event_type"], "properties": {"event_type": {"$ref": "#/definitions/EventType"}}}
    Draft7Validator.check_schema(batch)
    events = {kind: _event_validator(schema, name) for kind, name in event_types().items()}
    return Draft7Validator(batch, format_checker=Draft7Validator.FORMAT_CHECKER), events


def batch_problem(batch: Any) -> str | None:
    """The first reason ``batch`` does not fit the corrected schema (``$.path: message``), or None."""
    validator, events = _validators()
    problem = describe(validator.iter_errors(batch))
    if problem is not None:
        return problem
    for i, event in enumerate(batch.get("events") or []):
        if (problem := describe(events[event["event_type"]].iter_errors(event), f"$.events[{i}]")) is not None:
            return problem
    return None


def consent_state_schema() -> Schema:
    """The corrected ``consent_state`` as a self-contained schema (its own ``$id``, so it can be embedded in
    another schema: the admin API's seeded consent)."""
    definitions = corrected_schema()["definitions"]
    return {"$id": "urn:connector-mparticle:sandbox:consent-state", **copy.deepcopy(definitions["ConsentState"]),
            "definitions": {k: copy.deepcopy(definitions[k]) for k in ("ConsentStateEntry", "String")}}

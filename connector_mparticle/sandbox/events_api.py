"""Events API v2 (``developers/server/http/index.md``): ``/v2/events`` (one batch), ``/v2/bulkevents`` (up to 100)
and ``/v2/bulkevents/historical`` (backfill older than 72 hours).

The whole request must be under 256 KB on every path ("Whether using the /events or /bulkevents endpoint, the
total request size must be under 256kb", ``guides/default-service-limits``); a request that is not gets a 400,
the documented status for a request that cannot be accepted (413 is not documented). The 128 KB per batch is
the SDKs' limit and a recommendation for server-to-server batches, so it is not enforced. On the bulk paths
a bad batch does not fail the others: 202 regardless ("If some event batches succeed and some event batches
fail, you will still get an Accepted response").

Batches are checked against mParticle's published schema (:mod:`~connector_mparticle.sandbox.events_schema`);
names over 256 characters are truncated before the batch is stored (``guides/default-service-limits``).
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import events_error
from connector_mparticle.sandbox.events_schema import batch_problem
from connector_mparticle.sandbox.identity_types import DEVICE_INFO_KEYS, by_events_key

__all__ = ["MAX_NAME_CHARS", "ROUTES", "batch_count", "truncated"]

#: ``guides/default-service-limits``: event names and event attribute names are limited to 256 characters; "For
#: S2S data, names exceeding the limit will be truncated" (event names) and "S2S will truncate the attribute
#: name". Screen names count as event names ("Unique event names and Screen Names" share one limit).
MAX_NAME_CHARS = 256
_NAME_FIELDS = ("event_name", "screen_name")


class Invalid(ValueError):
    """A batch breaks a documented rule."""


def batch_identities(batch: dict[str, Any]) -> dict[str, str]:
    """Validate one batch; return its identities by canonical name (user identities, then device ids)."""
    problem = batch_problem(batch)
    if problem is not None:
        raise Invalid(problem)
    return {**_user_identities(batch), **_device_identities(batch)}


def _value(value: Any) -> str | None:
    """An identity value as mParticle keeps it: the schema's ``String`` also allows numbers (kept as their
    text) and booleans or null (which identify nobody)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _user_identities(batch: dict[str, Any]) -> dict[str, str]:
    identities: dict[str, str] = {}
    for key, value in (batch.get("user_identities") or {}).items():
        kind = by_events_key(key)
        if kind is None:  # the schema lists the keys; this table must know each of them
            raise Invalid(f"$.user_identities: unknown identity type '{key}'")
        if (text := _value(value)) is not None:
            identities[kind.name] = text
    return identities


def _device_identities(batch: dict[str, Any]) -> dict[str, str]:
    """The device ids in ``device_info`` and ``mp_deviceid``."""
    device = dict(batch.get("device_info") or {})
    if batch.get("mp_deviceid"):
        device["mp_deviceid"] = batch["mp_deviceid"]
    kinds = ((DEVICE_INFO_KEYS.get(key), _value(value)) for key, value in device.items())
    return {kind.name: text for kind, text in kinds if kind is not None and text is not None}


def truncated(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with event names and event attribute names cut to :data:`MAX_NAME_CHARS` (a copy)."""
    events = batch.get("events")
    if not events:
        return batch
    return {**batch, "events": [_truncated_event(e) for e in events]}


def _truncated_event(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    if not isinstance(data, dict):
        return event
    data = {**data, **{f: data[f][:MAX_NAME_CHARS] for f in _NAME_FIELDS if isinstance(data.get(f), str)}}
    if isinstance(data.get("custom_attributes"), dict):
        data["custom_attributes"] = {k[:MAX_NAME_CHARS]: v for k, v in data["custom_attributes"].items()}
    return {**event, "data": data}


def batch_count(call: Call) -> int:
    """How many batches a call uploads (the Events limit counts batches)."""
    if "bulkevents" in call.path:
        try:
            body = call.json()
        except BadJson:
            return 1
        return max(1, len(body)) if isinstance(body, list) else 1
    return 1


def _too_large(ctx: SandboxContext, call: Call) -> Reply | None:
    limit = ctx.config.max_request_bytes
    if len(call.body) >= limit:
        return events_error(400, f"The request is {len(call.body)} bytes; the total request size must be under "
                                 f"{limit // 1024} KB.")
    return None


def upload(ctx: SandboxContext, call: Call) -> Reply:
    if (reply := _too_large(ctx, call)) is not None:
        return reply
    try:
        batch = call.json()
        identities = batch_identities(batch)
    except (BadJson, Invalid) as exc:
        return events_error(400, str(exc))
    ctx.store.store_batch(truncated(batch), identities, call.client, ctx.workspace.current)
    return Reply(202, None)


def _bulk(ctx: SandboxContext, call: Call, historical: bool) -> Reply:
    if (reply := _too_large(ctx, call)) is not None:
        return reply
    try:
        batches = call.json()
    except BadJson as exc:
        return events_error(400, str(exc))
    problem = first_problem("events_bulk", batches)
    if problem is not None:
        return events_error(400, problem)
    workspace = ctx.workspace.current
    for batch in batches:
        try:
            identities = batch_identities(batch)
        except Invalid:
            ctx.store.count("batches_rejected")
            continue
        ctx.store.store_batch(truncated(batch), identities, call.client, workspace, historical=historical)
    return Reply(202, None)


def bulk_upload(ctx: SandboxContext, call: Call) -> Reply:
    return _bulk(ctx, call, historical=False)


def historical_upload(ctx: SandboxContext, call: Call) -> Reply:
    return _bulk(ctx, call, historical=True)


ROUTES = [
    Route("POST", r"/v2/events/?", "events", upload, "input"),
    Route("POST", r"/v2/bulkevents/?", "events", bulk_upload, "input"),
    Route("POST", r"/v2/bulkevents/historical/?", "events", historical_upload, "input"),
]

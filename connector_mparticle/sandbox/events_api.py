"""Events API v2 (``developers/server/http/index.md``): ``/v2/events`` (one batch), ``/v2/bulkevents`` (up to 100)
and ``/v2/bulkevents/historical`` (backfill older than 72 hours).

The whole request must be under 256 KB on every path ("Whether using the /events or /bulkevents endpoint, the
total request size must be under 256kb", ``guides/default-service-limits``); a request that is not gets a 400,
the documented status for a request that cannot be accepted (413 is not documented). The 128 KB per batch is
the SDKs' limit and a recommendation for server-to-server batches, so it is not enforced. On the bulk paths
a bad batch does not fail the others: 202 regardless ("If some event batches succeed and some event batches
fail, you will still get an Accepted response").
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.errors import events_error
from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.identity_types import DEVICE_INFO_KEYS, by_events_key
from connector_mparticle.sandbox.schemas import batch_problem, first_problem

__all__ = ["ROUTES", "batch_count"]


class Invalid(ValueError):
    """A batch breaks a documented rule."""


def batch_identities(batch: dict[str, Any]) -> dict[str, str]:
    """Validate one batch; return its identities by canonical name (user identities, then device ids)."""
    problem = batch_problem(batch)
    if problem is not None:
        raise Invalid(problem)
    return {**_user_identities(batch), **_device_identities(batch)}


def _user_identities(batch: dict[str, Any]) -> dict[str, str]:
    identities: dict[str, str] = {}
    for key, value in (batch.get("user_identities") or {}).items():
        kind = by_events_key(key)
        if kind is None:
            raise Invalid(f"$.user_identities: unknown identity type '{key}'")
        if value:
            identities[kind.name] = value
    return identities


def _device_identities(batch: dict[str, Any]) -> dict[str, str]:
    """The device ids in ``device_info`` and ``mp_deviceid`` (the schema has checked that they are strings)."""
    device = dict(batch.get("device_info") or {})
    if batch.get("mp_deviceid"):
        device["mp_deviceid"] = batch["mp_deviceid"]
    kinds = ((DEVICE_INFO_KEYS.get(key), value) for key, value in device.items())
    return {kind.name: value for kind, value in kinds if kind is not None and value}


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
    ctx.store.store_batch(batch, identities, call.client, ctx.workspace.current)
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
        ctx.store.store_batch(batch, identities, call.client, workspace, historical=historical)
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

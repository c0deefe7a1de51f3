"""The sandbox admin API under ``/_sandbox/``: seed and read data, switch limits, faults, durations, workspace
settings and shape variation.

It needs no credentials: the sandbox only ever listens on loopback. Every route takes and returns JSON; a body
of the wrong shape is refused with 400 (each is checked against its schema in
:mod:`~connector_mparticle.sandbox.body_schemas`; the README documents them). The index ``GET /_sandbox/`` lives in
:mod:`~connector_mparticle.sandbox.routes`, which holds every route.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.dsr_status import iso
from connector_mparticle.sandbox.faults import Faults
from connector_mparticle.sandbox.identity_types import by_name
from connector_mparticle.sandbox.records import DsrRecord, Durations

__all__ = ["ROUTES"]


class Refused(ValueError):
    """The admin call cannot be done as asked (answered with 400)."""


def _bad(message: str) -> Reply:
    return Reply(400, {"error": message})


def _body(call: Call, schema: str) -> Any:
    try:
        body = call.json() if call.body else {}
    except BadJson as exc:
        raise Refused(str(exc)) from None
    problem = first_problem(schema, body)
    if problem is not None:
        raise Refused(problem)
    return body


def credentials(ctx: SandboxContext, call: Call) -> Reply:
    c = ctx.config.credentials
    return Reply(200, {"workspace_key": c.workspace_key, "workspace_secret": c.workspace_secret,
                       "input_key": c.input_key, "input_secret": c.input_secret,
                       "client_id": c.client_id, "client_secret": c.client_secret,
                       "workspace_id": c.workspace_id, "account_id": c.account_id, "org_id": c.org_id,
                       "token_url": f"{ctx.base_url}/oauth/token",
                       "profile_api_url": f"{ctx.base_url}/userprofile/v1/{c.org_id}/{c.account_id}/{c.workspace_id}"})


def seed_profile(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call, "admin_profile")
        mpid = body.get("mpid")
        profile = ctx.store.add_profile(
            body["identities"], ctx.workspace.current.identity, attributes=body.get("attributes"),
            consent=body.get("consent"), batches=body.get("batches") or [],
            mpid=int(mpid) if mpid is not None else None, audiences=body.get("audiences") or [])
    except (Refused, ValueError) as exc:
        return _bad(f"cannot seed profile: {exc}")
    return Reply(201, profile)


def list_profiles(ctx: SandboxContext, call: Call) -> Reply:
    wanted = {k: v[0] for k, v in call.query.items()}
    unknown = sorted(k for k in wanted if by_name(k) is None)
    if unknown:
        return _bad(f"unknown identity type(s): {', '.join(unknown)}")
    return Reply(200, ctx.store.find_profiles(wanted))


def get_profile(ctx: SandboxContext, call: Call) -> Reply:
    found = ctx.store.profile(int(call.params["mpid"]))
    return Reply(200, found) if found else Reply(404, {"error": "no such profile (never existed, or erased)"})


def _dsr_view(ctx: SandboxContext, record: DsrRecord) -> dict[str, Any]:
    data = ctx.status_body(record, tidy=True)  # the sandbox's own API: always the tidy shape
    data.update({"regulation": record.regulation, "subject_request_type": record.request_type,
                 "identities": record.identities, "received_time": iso(record.received_at),
                 "matched_mpids": [str(m) for m in record.matched_mpids], "extensions_sent": record.extensions,
                 "status_callback_urls": record.callback_urls})
    return data


def list_dsrs(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    return Reply(200, [_dsr_view(ctx, r) for r in ctx.store.dsrs()])


def get_dsr(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    record = ctx.store.dsr(call.params["id"])
    return Reply(200, _dsr_view(ctx, record)) if record else Reply(404, {"error": "no such request"})


def force_status(ctx: SandboxContext, call: Call) -> Reply:
    try:
        status = _body(call, "admin_status")["status"]
    except Refused as exc:
        return _bad(str(exc))
    record = ctx.store.force_status(call.params["id"], status, ctx.workspace.current)
    if record is None:
        return Reply(404, {"error": "no such request"})
    ctx.notify(record)
    return Reply(200, _dsr_view(ctx, record))


def get_limits(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, {api: {"limit": limit.limit, "window_seconds": limit.window_seconds, "scope": limit.scope,
                             "external_share": limit.external_share, "acceleration": limit.acceleration}
                       for api, limit in ctx.limits.limits().items()})


def put_limits(ctx: SandboxContext, call: Call) -> Reply:
    try:
        for api, changes in _body(call, "admin_limits").items():
            ctx.limits.update(api, **changes)
    except (Refused, ValueError) as exc:
        return _bad(f"cannot set limits: {exc}")
    return get_limits(ctx, call)


def get_faults(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, {api: faults.to_dict() for api, faults in ctx.faults.all().items()})


def put_faults(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call, "admin_faults")
        ctx.faults.update({api: Faults.from_dict(spec) for api, spec in body.items()})
    except (Refused, TypeError, ValueError) as exc:
        return _bad(f"cannot set faults: {exc}")
    return get_faults(ctx, call)


def clear_faults(ctx: SandboxContext, call: Call) -> Reply:
    ctx.faults.clear()
    return get_faults(ctx, call)


def get_durations(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, ctx.store.timing())


def put_durations(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call, "admin_durations")
    except Refused as exc:
        return _bad(f"cannot set durations: {exc}")
    ctx.store.set_timing({kind: Durations(**spec) for kind, spec in (body.get("durations") or {}).items()},
                         body.get("overrun_seconds"), body.get("results_ttl_seconds"))
    return get_durations(ctx, call)


def get_workspace(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, ctx.workspace.current.to_dict())


def put_workspace(ctx: SandboxContext, call: Call) -> Reply:
    try:
        settings = ctx.workspace.update(_body(call, "admin_workspace"))
    except (Refused, TypeError, ValueError) as exc:
        return _bad(f"cannot change the workspace settings: {exc}")
    return Reply(200, settings.to_dict())


def get_shapes(ctx: SandboxContext, call: Call) -> Reply:
    """Shape variation: whether answers vary among the documented shapes, and the seed."""
    return Reply(200, ctx.shapes.current.settings.to_dict())


def put_shapes(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call, "admin_shapes")
    except Refused as exc:
        return _bad(f"cannot set shapes: {exc}")
    return Reply(200, ctx.shapes.update(body.get("variation"), body.get("seed")).to_dict())


def ignored_consent(ctx: SandboxContext, call: Call) -> Reply:
    """Consent for GDPR purposes the workspace has not defined, which mParticle does not store."""
    return Reply(200, ctx.store.ignored_consent())


def get_log(ctx: SandboxContext, call: Call) -> Reply:
    try:
        since = int(call.arg("since") or 0)
    except ValueError:
        return _bad("'since' must be an integer")
    return Reply(200, {"entries": ctx.log.entries(since, call.arg("api")), "next": ctx.log.last_seq()})


def clear_log(ctx: SandboxContext, call: Call) -> Reply:
    ctx.log.clear()
    return Reply(200, {"entries": [], "next": ctx.log.last_seq()})


def callbacks(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, ctx.callbacks.deliveries())


def expire_tokens(ctx: SandboxContext, call: Call) -> Reply:
    """Make every issued token expire now (clients holding one get 401 until they fetch a new one)."""
    return Reply(200, {"expired": ctx.tokens.expire_all()})


def revoke_tokens(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, {"revoked": ctx.tokens.revoke_all()})


def stats(ctx: SandboxContext, call: Call) -> Reply:
    """Writes that took effect: DSRs created, batches stored, duplicate batches ignored, and more."""
    return Reply(200, ctx.store.stats())


def ca_certificate(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, raw=ctx.pki.ca.cert_pem, content_type="application/x-pem-file")


def reset(ctx: SandboxContext, call: Call) -> Reply:
    ctx.reset()
    return Reply(200, {"reset": True})


ROUTES = [
    Route("GET", r"/_sandbox/credentials", "admin", credentials),
    Route("POST", r"/_sandbox/profiles", "admin", seed_profile),
    Route("GET", r"/_sandbox/profiles", "admin", list_profiles),
    Route("GET", r"/_sandbox/profiles/(?P<mpid>-?\d+)", "admin", get_profile),
    Route("GET", r"/_sandbox/dsrs", "admin", list_dsrs),
    Route("GET", r"/_sandbox/dsrs/(?P<id>[^/]+)", "admin", get_dsr),
    Route("POST", r"/_sandbox/dsrs/(?P<id>[^/]+)/status", "admin", force_status),
    Route("GET", r"/_sandbox/limits", "admin", get_limits),
    Route("PUT", r"/_sandbox/limits", "admin", put_limits),
    Route("GET", r"/_sandbox/faults", "admin", get_faults),
    Route("PUT", r"/_sandbox/faults", "admin", put_faults),
    Route("DELETE", r"/_sandbox/faults", "admin", clear_faults),
    Route("GET", r"/_sandbox/durations", "admin", get_durations),
    Route("PUT", r"/_sandbox/durations", "admin", put_durations),
    Route("GET", r"/_sandbox/workspace", "admin", get_workspace),
    Route("PUT", r"/_sandbox/workspace", "admin", put_workspace),
    Route("GET", r"/_sandbox/shapes", "admin", get_shapes),
    Route("PUT", r"/_sandbox/shapes", "admin", put_shapes),
    Route("GET", r"/_sandbox/consent/ignored", "admin", ignored_consent),
    Route("GET", r"/_sandbox/log", "admin", get_log),
    Route("DELETE", r"/_sandbox/log", "admin", clear_log),
    Route("GET", r"/_sandbox/callbacks", "admin", callbacks),
    Route("GET", r"/_sandbox/stats", "admin", stats),
    Route("POST", r"/_sandbox/oauth/expire", "admin", expire_tokens),
    Route("POST", r"/_sandbox/oauth/revoke", "admin", revoke_tokens),
    Route("GET", r"/_sandbox/ca\.pem", "admin", ca_certificate),
    Route("POST", r"/_sandbox/reset", "admin", reset),
]

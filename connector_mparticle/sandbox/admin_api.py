"""The sandbox admin API under ``/_sandbox/``: seed and read data, switch limits, faults and durations.

It needs no credentials: the sandbox only ever listens on loopback. Every route takes and returns JSON.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.limits import APIS, Faults, Limit
from connector_mparticle.sandbox.store import Durations

if TYPE_CHECKING:
    from connector_mparticle.sandbox.server import SandboxContext

__all__ = ["ROUTES"]

DSR_STATUSES = ("pending", "in_progress", "completed", "cancelled")


def _bad(message: str) -> Reply:
    return Reply(400, {"error": message})


def _body(call: Call) -> dict[str, Any]:
    body = call.json() if call.body else {}
    if not isinstance(body, dict):
        raise BadJson("the body must be a JSON object")
    return body


def index(ctx: SandboxContext, call: Call) -> Reply:
    from connector_mparticle.sandbox.server import ROUTES as ALL

    return Reply(200, {
        "base_url": ctx.base_url,
        "credentials": credentials(ctx, call).body,
        "routes": [{"method": r.method, "path": r.pattern, "api": r.api} for r in ALL],
    })


def credentials(ctx: SandboxContext, call: Call) -> Reply:
    c = ctx.config.credentials
    return Reply(200, {"workspace_key": c.workspace_key, "workspace_secret": c.workspace_secret,
                       "input_key": c.input_key, "input_secret": c.input_secret,
                       "client_id": c.client_id, "client_secret": c.client_secret,
                       "workspace_id": c.workspace_id, "token_url": f"{ctx.base_url}/oauth/token"})


def seed_profile(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call)
        identities = body.get("identities")
        if not isinstance(identities, dict) or not identities:
            raise BadJson("'identities' must be a non-empty object of identity type to value")
        profile = ctx.store.add_profile(identities, body.get("attributes"), body.get("consent"),
                                        body.get("batches", []), body.get("mpid"), body.get("audiences", []))
    except (BadJson, KeyError, TypeError, ValueError) as exc:
        return _bad(f"cannot seed profile: {exc}")
    return Reply(201, profile.to_dict())


def list_profiles(ctx: SandboxContext, call: Call) -> Reply:
    wanted = {k: v[0] for k, v in call.query.items()}
    with ctx.store.lock:
        profiles = ctx.store.match(wanted) if wanted else list(ctx.store.profiles.values())
        return Reply(200, [p.to_dict() for p in profiles])


def get_profile(ctx: SandboxContext, call: Call) -> Reply:
    with ctx.store.lock:
        profile = ctx.store.profiles.get(int(call.params["mpid"]))
        if profile is None:
            return Reply(404, {"error": "no such profile (never existed, or erased)"})
        data = profile.to_dict()
        data["batches"] = list(profile.batches)
        return Reply(200, data)


def _dsr_view(ctx: SandboxContext, record: Any) -> dict[str, Any]:
    from connector_mparticle.sandbox.opendsr_api import iso, status_body

    data = status_body(ctx, record)
    data.update({"regulation": record.regulation, "subject_request_type": record.request_type,
                 "identities": record.identities, "received_time": iso(record.received_at),
                 "matched_mpids": [str(m) for m in record.matched_mpids], "extensions_sent": record.extensions,
                 "status_callback_urls": record.callback_urls})
    return data


def list_dsrs(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    with ctx.store.lock:
        records = sorted(ctx.store.dsrs.values(), key=lambda r: r.received_at)
        return Reply(200, [_dsr_view(ctx, r) for r in records])


def get_dsr(ctx: SandboxContext, call: Call) -> Reply:
    ctx.advance()
    record = ctx.store.dsrs.get(call.params["id"].lower())
    return Reply(200, _dsr_view(ctx, record)) if record else Reply(404, {"error": "no such request"})


def force_status(ctx: SandboxContext, call: Call) -> Reply:
    try:
        status = _body(call).get("status")
    except BadJson as exc:
        return _bad(str(exc))
    if status not in DSR_STATUSES:
        return _bad(f"status must be one of {', '.join(DSR_STATUSES)}")
    record = ctx.store.dsrs.get(call.params["id"].lower())
    if record is None:
        return Reply(404, {"error": "no such request"})
    with ctx.store.lock:
        record.forced = True
        ctx.store.set_status(record, status)
    ctx.notify(record)
    return Reply(200, _dsr_view(ctx, record))


def get_limits(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, {api: {"limit": w.limit.limit, "window_seconds": w.limit.window_seconds,
                             "scope": w.limit.scope, "external_share": w.limit.external_share}
                       for api, w in ctx.windows.items()})


def put_limits(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call)
        for api, spec in body.items():
            if api not in ctx.windows:
                raise BadJson(f"unknown limit '{api}' (known: {', '.join(sorted(ctx.windows))})")
            current = ctx.windows[api].limit
            ctx.set_limit(api, Limit(float(spec.get("limit", current.limit)),
                                     float(spec.get("window_seconds", current.window_seconds)),
                                     str(spec.get("scope", current.scope)),
                                     float(spec.get("external_share", current.external_share))))
    except (BadJson, AttributeError, TypeError, ValueError) as exc:
        return _bad(f"cannot set limits: {exc}")
    return get_limits(ctx, call)


def get_faults(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, {api: ctx.faults(api).to_dict() for api in APIS})


def put_faults(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call)
        updates = {}
        for api, spec in body.items():
            if api not in APIS:
                raise BadJson(f"unknown API '{api}' (known: {', '.join(APIS)})")
            updates[api] = Faults.from_dict(dict(spec))
    except (BadJson, TypeError, ValueError) as exc:
        return _bad(f"cannot set faults: {exc}")
    ctx.fault_settings.update(updates)
    return get_faults(ctx, call)


def clear_faults(ctx: SandboxContext, call: Call) -> Reply:
    ctx.fault_settings.clear()
    return get_faults(ctx, call)


def get_durations(ctx: SandboxContext, call: Call) -> Reply:
    store = ctx.store
    return Reply(200, {
        "durations": {k: {"pending": d.pending, "in_progress": d.in_progress} for k, d in store.durations.items()},
        "overrun_seconds": store.overrun, "results_ttl_seconds": store.results_ttl,
    })


def put_durations(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call)
        with ctx.store.lock:
            for kind, spec in (body.get("durations") or {}).items():
                if kind not in ("access", "erasure"):
                    raise BadJson("durations are set for 'access' (also portability) and 'erasure'")
                ctx.store.durations[kind] = Durations(float(spec["pending"]), float(spec["in_progress"]))
            if "overrun_seconds" in body:
                ctx.store.overrun = float(body["overrun_seconds"])
            if "results_ttl_seconds" in body:
                ctx.store.results_ttl = float(body["results_ttl_seconds"])
    except (BadJson, KeyError, TypeError, ValueError) as exc:
        return _bad(f"cannot set durations: {exc}")
    return get_durations(ctx, call)


def get_log(ctx: SandboxContext, call: Call) -> Reply:
    since = int(call.arg("since") or 0)
    api = call.arg("api")
    entries = [e for e in ctx.log_entries(since) if api is None or e["api"] == api]
    return Reply(200, {"entries": entries, "next": ctx.log_next()})


def clear_log(ctx: SandboxContext, call: Call) -> Reply:
    ctx.clear_log()
    return Reply(200, {"entries": [], "next": ctx.log_next()})


def callbacks(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, ctx.callbacks.deliveries())


def expire_tokens(ctx: SandboxContext, call: Call) -> Reply:
    """Make every issued token expire now (clients holding one get 401 until they fetch a new one)."""
    with ctx.store.lock:
        for token in ctx.tokens:
            ctx.tokens[token] = time.time() - 1
        return Reply(200, {"expired": len(ctx.tokens)})


def revoke_tokens(ctx: SandboxContext, call: Call) -> Reply:
    with ctx.store.lock:
        count = len(ctx.tokens)
        ctx.tokens.clear()
        return Reply(200, {"revoked": count})


def stats(ctx: SandboxContext, call: Call) -> Reply:
    """Writes that took effect: DSRs created, batches stored, duplicate batches ignored."""
    with ctx.store.lock:
        return Reply(200, {"dsrs": len(ctx.store.dsrs), "profiles": len(ctx.store.profiles), **ctx.store.stats})


def ca_certificate(ctx: SandboxContext, call: Call) -> Reply:
    return Reply(200, raw=ctx.pki.ca.cert_pem, content_type="application/x-pem-file")


def reset(ctx: SandboxContext, call: Call) -> Reply:
    ctx.reset()
    return Reply(200, {"reset": True})


ROUTES = [
    Route("GET", r"/_sandbox/?", "admin", index),
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
    Route("GET", r"/_sandbox/log", "admin", get_log),
    Route("DELETE", r"/_sandbox/log", "admin", clear_log),
    Route("GET", r"/_sandbox/callbacks", "admin", callbacks),
    Route("GET", r"/_sandbox/stats", "admin", stats),
    Route("POST", r"/_sandbox/oauth/expire", "admin", expire_tokens),
    Route("POST", r"/_sandbox/oauth/revoke", "admin", revoke_tokens),
    Route("GET", r"/_sandbox/ca\.pem", "admin", ca_certificate),
    Route("POST", r"/_sandbox/reset", "admin", reset),
]

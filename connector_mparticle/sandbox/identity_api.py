"""IDSync v1 ``POST /v1/search``: find a profile by known identities, never creating one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector_mparticle.identities import by_idsync_key
from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.store import LOGIN_TYPES

if TYPE_CHECKING:
    from connector_mparticle.sandbox.server import SandboxContext

__all__ = ["ROUTES", "identity_error"]


def identity_error(status: int, code: str, message: str) -> Reply:
    """IDSync's error body: ``{"errors": [{"code", "message"}]}``."""
    return Reply(status, {"errors": [{"code": code, "message": message}]})


def search(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = call.json()
    except BadJson as exc:
        return identity_error(400, "BAD_REQUEST", str(exc))
    if not isinstance(body, dict):
        return identity_error(400, "BAD_REQUEST", "the request body must be a JSON object")
    if body.get("environment") not in ("production", "development"):
        return identity_error(400, "BAD_REQUEST", "'environment' must be 'production' or 'development'")
    known = body.get("known_identities")
    if not isinstance(known, dict) or not known:
        return identity_error(400, "BAD_REQUEST", "'known_identities' must be an object with at least one identity")
    canonical: dict[str, str] = {}
    for key, value in known.items():
        kind = by_idsync_key(key)
        if kind is None:
            return identity_error(400, "BAD_REQUEST", f"unknown identity type '{key}'")
        if not isinstance(value, str) or not value:
            return identity_error(400, "BAD_REQUEST", f"identity '{key}' must be a non-empty string")
        canonical[kind.name] = value
    matches = ctx.store.match(canonical)
    if not matches:
        return identity_error(404, "NOT_FOUND_ERROR", "User Profile Not Found")
    profile = matches[0]
    matched = {k: v for k, v in known.items() if profile.identities.get(by_idsync_key(k).name) == v}  # type: ignore[union-attr]
    return Reply(200, {
        "context": None,
        "mpid": str(profile.mpid),
        "matched_identities": matched,
        "is_ephemeral": False,
        "is_logged_in": bool(LOGIN_TYPES & set(profile.identities)),
    })


ROUTES = [Route("POST", r"/v1/search", "identity", search, "input")]

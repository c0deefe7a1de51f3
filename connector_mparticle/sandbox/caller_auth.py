"""Who is calling, judged the way each API's documentation says it authenticates.

- DSR API: HTTP Basic with the workspace key and secret (``developers/dsr-api/v3`` "Authentication").
- Events and IDSync: HTTP Basic with an input (platform) key and secret (``developers/server/http``,
  ``developers/idsync/http-api``). Events answers 401 when the header is missing, 403 when it is wrong.
  IDSync also takes its HMAC digest and, where the workspace enables it, the key alone
  (:mod:`~connector_mparticle.sandbox.hmac_auth`).
- Profile API: an OAuth bearer token from ``/oauth/token`` (``developers/profile-api`` "Authentication"), nothing
  else.

mParticle documents bearer tokens for the Platform and Profile APIs only, so a token is refused on the DSR,
Events and IDSync APIs unless the workspace setting ``oauth_apis`` names that API (for workspaces that are
issued such credentials).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from connector_mparticle.sandbox.calls import Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import dsr_error, events_error, identity_error, profile_error
from connector_mparticle.sandbox.hmac_auth import verify

__all__ = ["authenticate"]


def _refuse(api: str, missing: bool) -> Reply:
    if api == "dsr":
        return dsr_error(401, "Unauthorized: the credentials provided in the request are not valid.",
                         reason="UnauthorizedException", domain="Authentication")
    if api == "identity":
        return identity_error(401, "UNAUTHORIZED", "Unauthorized: the API key and secret were not accepted.")
    if api == "profile":
        return profile_error(401, "UNAUTHORIZED", "Unauthorized: a valid bearer token is required.")
    if missing:
        return events_error(401, "Unauthorized: no credentials were supplied.")
    return events_error(403, "Forbidden: the credentials were not accepted.")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authenticate(ctx: SandboxContext, call: Call, route: Route) -> tuple[str, Reply | None]:
    """(client label, None) when the call may proceed; ("", refusal) otherwise."""
    header = call.headers.get("Authorization") or ""
    if not header and route.api == "identity" and call.headers.get("x-mp-key"):
        workspace = ctx.workspace.current
        if verify(call, ctx.config.credentials, workspace.idsync_key_only):
            return "input", None
        return "", _refuse(route.api, missing=False)
    if not header:
        return "", _refuse(route.api, missing=True)
    scheme, _, value = header.partition(" ")
    client = _client(ctx, route, scheme.lower(), value.strip())
    return (client, None) if client is not None else ("", _refuse(route.api, missing=False))


def _client(ctx: SandboxContext, route: Route, scheme: str, credential: str) -> str | None:
    """The label of the client ``credential`` proves, or None when it proves nothing this route accepts."""
    if scheme == "bearer":
        return _bearer(ctx, route, credential)
    if scheme == "basic" and route.auth != "bearer":
        return _basic(ctx, route, credential)
    return None


def _bearer(ctx: SandboxContext, route: Route, token: str) -> str | None:
    accepts = route.auth == "bearer" or route.api in ctx.workspace.current.oauth_apis
    return "oauth" if accepts and ctx.tokens.valid(token) else None


def _basic(ctx: SandboxContext, route: Route, encoded: str) -> str | None:
    try:
        key, _, secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    creds = ctx.config.credentials
    expected = ((creds.workspace_key, creds.workspace_secret) if route.auth == "workspace"
                else (creds.input_key, creds.input_secret))
    if _same(key, expected[0]) and _same(secret, expected[1]):
        return route.auth or "anonymous"
    return None

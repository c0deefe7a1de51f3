"""The OAuth 2.0 token endpoint (client credentials), as at ``sso.auth.mparticle.com/oauth/token``.

``developers/profile-api`` "Authentication": a JSON body with client_id, client_secret, audience
``https://api.mparticle.com`` and grant_type ``client_credentials``; the answer is
``{access_token, expires_in: 28800, token_type: "Bearer"}``. Form bodies and HTTP Basic client credentials are
accepted too (standard OAuth 2.0 client authentication, which clients such as requests-oauthlib use). A
request without the audience is refused, as Auth0 (which serves ``sso.auth.mparticle.com``) refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qs

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext

__all__ = ["ROUTES"]


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


def _fields(call: Call) -> dict[str, str] | Reply:
    """The token request's parameters, from a JSON object or a form body."""
    content_type = (call.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return {k: v[0] for k, v in parse_qs(call.body.decode("utf-8", "replace")).items()}
    try:
        body = call.json()
    except BadJson as exc:
        return _oauth_error(400, "invalid_request", str(exc))
    if (problem := first_problem("oauth_token", body)) is not None:
        return _oauth_error(400, "invalid_request", problem)
    return {k: str(v) for k, v in body.items()}


def _client(call: Call, fields: dict[str, str]) -> tuple[str | None, str | None] | Reply:
    """(client_id, client_secret): from HTTP Basic when the request uses it, else from the parameters."""
    header = call.headers.get("Authorization") or ""
    if not header.lower().startswith("basic "):
        return fields.get("client_id"), fields.get("client_secret")
    try:
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return _oauth_error(401, "invalid_client", "malformed Basic credentials")
    return client_id, client_secret


def _same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is present and equals ``expected`` (compared in constant time)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _audience_refusal(audience: str | None, expected: str) -> Reply | None:
    """``developers/profile-api``: the body "must contain" ``audience`` = ``https://api.mparticle.com``. The
    token endpoint is Auth0's, which refuses a client-credentials request without one ("Non-global clients are
    not allowed access to APIv1", reported in postmanlabs/postman-app-support#2934) and one for an API it
    does not serve ("Service not enabled within domain")."""
    if not audience:
        return _oauth_error(403, "access_denied", "Non-global clients are not allowed access to APIv1")
    if audience != expected:
        return _oauth_error(403, "access_denied", f"Service not enabled within domain: {audience}")
    return None


def token(ctx: SandboxContext, call: Call) -> Reply:
    """Issue a bearer token to the sandbox's client for the sandbox's audience."""
    fields = _fields(call)
    if isinstance(fields, Reply):
        return fields
    client = _client(call, fields)
    if isinstance(client, Reply):
        return client
    if fields.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    creds = ctx.config.credentials
    if not (_same(client[0], creds.client_id) and _same(client[1], creds.client_secret)):
        return _oauth_error(401, "access_denied", "Unauthorized")
    refusal = _audience_refusal(fields.get("audience"), ctx.config.audience)
    if refusal is not None:
        return refusal
    ttl = ctx.config.token_ttl_seconds
    body = {"access_token": ctx.tokens.issue(ttl), "expires_in": int(ttl), "token_type": "Bearer"}
    return Reply(200, ctx.shapes.current.ordered(body, "token"))


ROUTES = [Route("POST", r"/oauth/token", "oauth", token, None)]

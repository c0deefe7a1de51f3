"""The OAuth 2.0 token endpoint (client credentials), as at ``sso.auth.mparticle.com/oauth/token``.

``developers/profile-api`` "Authentication": a JSON body with client_id, client_secret, audience
``https://api.mparticle.com`` and grant_type ``client_credentials``; the answer is
``{access_token, expires_in: 28800, token_type: "Bearer"}``. Form bodies and HTTP Basic client credentials are
accepted too (standard OAuth 2.0 client authentication, which clients such as requests-oauthlib use).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from connector_mparticle.sandbox.http import BadJson, Call, Reply, Route

if TYPE_CHECKING:
    from connector_mparticle.sandbox.context import SandboxContext

__all__ = ["ROUTES"]


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description})


def token(ctx: SandboxContext, call: Call) -> Reply:
    content_type = (call.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = call.json()
        except BadJson as exc:
            return _oauth_error(400, "invalid_request", str(exc))
        if not isinstance(body, dict):
            return _oauth_error(400, "invalid_request", "the body must be a JSON object")
        fields = {k: str(v) for k, v in body.items()}
    else:
        fields = {k: v[0] for k, v in parse_qs(call.body.decode("utf-8", "replace")).items()}
    client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
    header = call.headers.get("Authorization") or ""
    if header.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "malformed Basic credentials")
    if fields.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    creds = ctx.config.credentials
    if not (client_id and client_secret and hmac.compare_digest(client_id.encode(), creds.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), creds.client_secret.encode())):
        return _oauth_error(401, "access_denied", "Unauthorized")
    if fields.get("audience", ctx.config.audience) != ctx.config.audience:
        return _oauth_error(403, "access_denied", "Service not enabled within domain")
    ttl = ctx.config.token_ttl_seconds
    access_token = ctx.tokens.issue(ttl)
    return Reply(200, {"access_token": access_token, "expires_in": int(ttl), "token_type": "Bearer"})


ROUTES = [Route("POST", r"/oauth/token", "oauth", token, None)]

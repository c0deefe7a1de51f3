"""Who is calling: HTTP Basic with the workspace (DSR) or input (Events, Identity) key and secret, or a
bearer token from the sandbox's OAuth endpoint. Failures are answered the way each API answers them."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import TYPE_CHECKING

from connector_mparticle.sandbox.events_api import events_error
from connector_mparticle.sandbox.http import Call, Reply, Route
from connector_mparticle.sandbox.identity_api import identity_error
from connector_mparticle.sandbox.opendsr_api import dsr_error

if TYPE_CHECKING:
    from connector_mparticle.sandbox.server import SandboxContext

__all__ = ["authenticate"]


def _refuse(api: str, missing: bool) -> Reply:
    if api == "dsr":
        return dsr_error(401, "Unauthorized: the workspace key and secret were not accepted.",
                         reason="UnauthorizedException", domain="Authentication")
    if api == "identity":
        return identity_error(401, "UNAUTHORIZED", "Unauthorized: the API key and secret were not accepted.")
    if missing:  # the Events API: 401 when the header is missing, 403 when the credentials are wrong
        return events_error(401, "Unauthorized: no credentials were supplied.")
    return events_error(403, "Forbidden: the API key and secret were not accepted.")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authenticate(ctx: SandboxContext, call: Call, route: Route) -> tuple[str, Reply | None]:
    """(client label, None) when the call may proceed; ("", refusal) otherwise."""
    header = call.headers.get("Authorization") or ""
    scheme, _, value = header.partition(" ")
    if not header:
        return "", _refuse(route.api, missing=True)
    if scheme.lower() == "bearer":
        with ctx.store.lock:
            expires = ctx.tokens.get(value.strip())
        if expires is not None and expires > time.time():
            return "oauth", None
        return "", _refuse(route.api, missing=False)
    if scheme.lower() != "basic":
        return "", _refuse(route.api, missing=False)
    try:
        key, _, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", _refuse(route.api, missing=False)
    creds = ctx.config.credentials
    expected = ((creds.workspace_key, creds.workspace_secret) if route.auth == "workspace"
                else (creds.input_key, creds.input_secret))
    if _same(key, expected[0]) and _same(secret, expected[1]):
        return route.auth or "anonymous", None
    return "", _refuse(route.api, missing=False)

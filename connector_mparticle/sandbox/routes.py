"""Every route the sandbox serves, in matching order, and the admin index (``GET /_sandbox/``) that lists them."""

from __future__ import annotations

from connector_mparticle.sandbox import admin_api, events_api, identity_api, oauth_api, opendsr_api, profile_api
from connector_mparticle.sandbox.calls import Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext

__all__ = ["ROUTES"]


def index(ctx: SandboxContext, call: Call) -> Reply:
    """The base URL, the credentials and every route."""
    return Reply(200, {
        "base_url": ctx.base_url,
        "credentials": admin_api.credentials(ctx, call).body,
        "routes": [{"method": r.method, "path": r.pattern, "api": r.api} for r in ROUTES],
    })


ROUTES: list[Route] = [*opendsr_api.ROUTES, *identity_api.ROUTES, *events_api.ROUTES, *oauth_api.ROUTES,
                       *profile_api.ROUTES, Route("GET", r"/_sandbox/?", "admin", index), *admin_api.ROUTES]

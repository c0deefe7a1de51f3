"""The Profile API (``developers/profile-api/index.md``), bearer tokens only, 15 requests/s.

- ``GET /userprofile/v1/{org}/{account}/{workspace}/{mpid}?fields=...``: the page's heading says POST and its
  curl example GET; both are served (docs inconsistent).
- ``POST /userprofile/v1/resolve/{org}/{account}/{workspace}?fields=...`` with ``{environment_type,
  identity: {type, value}}``: the identity must be an immutable id of the workspace.

``fields`` is required; each value must be one of the five documented ones. An org, account or workspace that
is not the sandbox's is a 403 ("Not authorized to access the specified method or resource"). The page
documents no 404: an unknown or erased mpid, or an immutable id no profile holds, is a 400 ("the requested
profile is invalid"), or a 404 when the workspace setting ``profile_not_found_status`` says so.
"""

from __future__ import annotations

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import profile_error
from connector_mparticle.sandbox.identity_types import by_profile_type
from connector_mparticle.sandbox.profile_document import PROFILE_FIELDS, profile_document
from connector_mparticle.sandbox.records import Profile

__all__ = ["ROUTES"]


def _fields(call: Call) -> list[str] | Reply:
    raw = call.arg("fields")
    if not raw:
        return profile_error(400, "BAD_REQUEST", "the 'fields' query parameter is required")
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown or not fields:
        return profile_error(400, "BAD_REQUEST", f"unknown field(s) {', '.join(unknown)}; allowed: "
                                                 f"{', '.join(PROFILE_FIELDS)}")
    return fields


def _scope(ctx: SandboxContext, call: Call) -> Reply | None:
    creds = ctx.config.credentials
    given = (call.params["org"], call.params["account"], call.params["workspace"])
    if given != (str(creds.org_id), str(creds.account_id), str(creds.workspace_id)):
        return profile_error(403, "FORBIDDEN", "Not authorized to access the specified method or resource.")
    return None


def _scoped_fields(ctx: SandboxContext, call: Call) -> list[str] | Reply:
    """What every Profile API call checks first: the path's org/account/workspace, then ``fields``."""
    refusal = _scope(ctx, call)
    return refusal if refusal is not None else _fields(call)


#: Members the page's sample shows as null; under shape variation they may be absent instead.
_NULLABLE = ("limit_ad_tracking", "account_userattributes")


def _answer(ctx: SandboxContext, profile: Profile | None, fields: list[str]) -> Reply:
    if profile is None:
        status = ctx.workspace.current.profile_not_found_status
        return profile_error(status, "PROFILE_NOT_FOUND", "The requested profile is invalid: no such profile.")
    shapes, key = ctx.shapes.current, (profile.mpid, tuple(fields))
    document = shapes.drop_nulls(profile_document(profile, fields, ctx.store.audience_id,
                                                  exclusions=ctx.workspace.current.audience_exclusions),
                                 _NULLABLE, *key)
    return Reply(200, shapes.ordered(document, *key))


def by_mpid(ctx: SandboxContext, call: Call) -> Reply:
    fields = _scoped_fields(ctx, call)
    if isinstance(fields, Reply):
        return fields
    try:
        mpid = int(call.params["mpid"])
    except ValueError:
        return profile_error(400, "BAD_REQUEST", "the mpid must be a 64-bit integer")
    return _answer(ctx, ctx.store.profile_copy(mpid), fields)


def resolve(ctx: SandboxContext, call: Call) -> Reply:
    fields = _scoped_fields(ctx, call)
    if isinstance(fields, Reply):
        return fields
    try:
        body = call.json()
    except BadJson as exc:
        return profile_error(400, "BAD_REQUEST", str(exc))
    if (problem := first_problem("profile_resolve", body)) is not None:
        return profile_error(400, "BAD_REQUEST", problem)
    kind = by_profile_type(body["identity"]["type"])
    immutable = ctx.workspace.current.identity.immutable_ids
    if kind is None or kind.name not in immutable:
        return profile_error(400, "BAD_REQUEST", f"'{body['identity']['type']}' is not an immutable identity type "
                                                 f"of this workspace")
    return _answer(ctx, ctx.store.holder_of(kind.name, body["identity"]["value"]), fields)


_SCOPE = r"(?P<org>[^/]+)/(?P<account>[^/]+)/(?P<workspace>[^/]+)"
ROUTES = [
    Route("POST", rf"/userprofile/v1/resolve/{_SCOPE}/?", "profile", resolve, "bearer"),
    Route("GET", rf"/userprofile/v1/{_SCOPE}/(?P<mpid>[^/]+)/?", "profile", by_mpid, "bearer"),
    Route("POST", rf"/userprofile/v1/{_SCOPE}/(?P<mpid>[^/]+)/?", "profile", by_mpid, "bearer"),
]

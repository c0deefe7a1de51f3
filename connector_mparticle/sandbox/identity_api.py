"""IDSync v1 (``developers/idsync/http-api/index.md``, ``static/downloads/identity-swagger.yaml``).

``/search`` finds a profile and never creates one (no match: 404 ``NOT_FOUND_ERROR``, as mParticle's web SDK
expects in ``src/identity/search.ts``; the page gives no status). ``/identify``, ``/login`` and ``/logout``
resolve the same way and, under the default profile-conversion strategy, add the request's new identities to
the profile found or create one. ``?read_only=true`` (swagger) makes them change nothing; with no match it
then answers like ``/search`` (docs silent). ``/{mpid}/modify`` applies identity changes.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.sandbox.body_schemas import first_problem
from connector_mparticle.sandbox.calls import BadJson, Call, Reply, Route
from connector_mparticle.sandbox.context import SandboxContext
from connector_mparticle.sandbox.error_replies import identity_error
from connector_mparticle.sandbox.identity_types import by_idsync_key
from connector_mparticle.sandbox.records import Match
from connector_mparticle.sandbox.shapes import Shapes

__all__ = ["ROUTES"]


class Invalid(ValueError):
    """The request breaks a documented rule."""


def _body(call: Call, schema: str) -> dict[str, Any]:
    try:
        body = call.json()
    except BadJson as exc:
        raise Invalid(str(exc)) from None
    problem = first_problem(schema, body)
    if problem is not None:
        raise Invalid(problem)
    assert isinstance(body, dict)
    return body


def _known(body: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(canonical type -> value, canonical type -> the request's key) of the non-null known identities."""
    canonical: dict[str, str] = {}
    keys: dict[str, str] = {}
    for key, value in body["known_identities"].items():
        kind = by_idsync_key(key)
        if kind is None:
            raise Invalid(f"$.known_identities: unknown identity type '{key}'")
        if value is None:  # the web SDK sends null for an identity it no longer holds
            continue
        canonical[kind.name] = value
        keys[kind.name] = key
    if not canonical:
        raise Invalid("$.known_identities: at least one identity is required")
    return canonical, keys


def _answer(shapes: Shapes, match: Match, keys: dict[str, str], path: str) -> Reply:
    """The documented response body. Under shape variation ``context`` (null here) may be absent, and so may
    ``is_logged_in``, which the page does not document (mParticle's SDKs read it)."""
    key = (match.mpid, path, tuple(sorted(match.matched)))
    body = {
        "context": None,
        "mpid": str(match.mpid),
        # "only identifiers which were matched from your request will be returned"
        "matched_identities": {keys[kind]: value for kind, value in match.matched.items()},
        "is_ephemeral": False,
        "is_logged_in": match.logged_in,
    }
    if shapes.pick((False, True), *key, "undocumented"):
        del body["is_logged_in"]
    return Reply(200, shapes.ordered(shapes.drop_nulls(body, ("context",), *key), *key))


def _not_found() -> Reply:
    return identity_error(404, "NOT_FOUND_ERROR", "User Profile Not Found")


def _resolve(ctx: SandboxContext, call: Call, write: bool) -> Reply:
    """Search (``write`` False) or identify, login, logout."""
    try:
        known, keys = _known(_body(call, "idsync_request"))
    except Invalid as exc:
        return identity_error(400, "BAD_REQUEST", str(exc))
    read_only = (call.arg("read_only") or "").lower() == "true"
    match = ctx.store.identify(known, ctx.workspace.current.identity, write=write and not read_only,
                               lookup=not write)
    return _not_found() if match is None else _answer(ctx.shapes.current, match, keys, call.path)


def search(ctx: SandboxContext, call: Call) -> Reply:
    return _resolve(ctx, call, write=False)


def identify(ctx: SandboxContext, call: Call) -> Reply:
    return _resolve(ctx, call, write=True)


def modify(ctx: SandboxContext, call: Call) -> Reply:
    try:
        body = _body(call, "idsync_modify")
        mpid = int(call.params["mpid"])
        changes = []
        for i, change in enumerate(body["identity_changes"]):
            kind = by_idsync_key(change["identity_type"])
            if kind is None:
                raise Invalid(f"$.identity_changes[{i}].identity_type: unknown identity type "
                              f"'{change['identity_type']}'")
            changes.append((kind.name, change["old_value"], change["new_value"]))
        ctx.store.modify(mpid, changes, ctx.workspace.current.identity)
    # LookupError: "Modify must be performed on an existing mParticle ID", and the swagger lists no 404.
    except (ValueError, LookupError) as exc:  # Invalid is a ValueError
        return identity_error(400, "BAD_REQUEST", str(exc))
    # Body shape from mParticle's web SDK (IdentityModifyResultBody); the swagger says only "object".
    return Reply(200, ctx.shapes.current.ordered({"change_results": [
        {"identity_type": c["identity_type"], "modified_mpid": str(mpid)} for c in body["identity_changes"]]},
        mpid, "modify"))


ROUTES = [
    Route("POST", r"/v1/search/?", "identity", search, "input"),
    Route("POST", r"/v1/identify/?", "identity", identify, "input"),
    Route("POST", r"/v1/login/?", "identity", identify, "input"),
    Route("POST", r"/v1/logout/?", "identity", identify, "input"),
    Route("POST", r"/v1/(?P<mpid>-?\d+)/modify/?", "identity", modify, "input"),
]

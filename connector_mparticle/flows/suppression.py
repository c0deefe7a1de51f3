"""Suppression while an erasure waits (opt-in: ``erasure.suppress_while_waiting``).

``guides/data-subject-requests``: during the waiting period data keeps flowing, and "If you wish to remove users
from audiences or from event forwarding during the waiting period, set a user attribute and apply audience
criteria and/or forwarding rules to exclude them". So, once the erasure is submitted, the subject's profile gets
the user attribute ``erasure.suppression_attribute`` (``true``) through the Events API; the workspace's audiences
and forwarding rules exclude profiles that have it (docs/privacy-surface.md shows both). The erasure itself
removes the profile, attribute and all. If the erasure is cancelled, the attribute is removed
(``deleted_user_attributes``, ``developers/server/json-reference``).

Each batch carries a ``source_request_id`` derived from the request id and the step, so a repeated call marks
or unmarks once (mParticle ignores a batch whose id it has seen). Marking is a courtesy on top of the erasure: a
failure is reported in the result and the audit trail, never a reason to fail the erasure, which is submitted
already.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.errors import MParticleError
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.lookup import find_profile
from connector_mparticle.flows.subject import derived_uuid

__all__ = ["mark", "unmark"]


def _batch(flow: Flow, mpid: str, marked: bool) -> dict[str, Any]:
    attribute = flow.settings.erasure.suppression_attribute
    batch: dict[str, Any] = {"environment": flow.settings.environment, "mpid": int(mpid), "events": [],
                             "source_request_id": derived_uuid(flow.request.request_id,
                                                               "suppress" if marked else "unsuppress")}
    if marked:
        batch["user_attributes"] = {attribute: True}
    else:
        batch["deleted_user_attributes"] = [attribute]
    return batch


def _apply(flow: Flow, marked: bool) -> dict[str, Any]:
    """Set (or remove) the attribute on the subject's profile; what happened, for the result's summary."""
    attribute = flow.settings.erasure.suppression_attribute
    what = "suppress while the erasure waits" if marked else "lift the suppression"
    outcome: dict[str, Any] = {"attribute": attribute, "set" if marked else "removed": False}
    try:
        found = find_profile(flow.conn, flow.subject)
        mpid = found.mpid if found is not None else None
        if found is None or found.found is False or mpid is None:
            flow.note(what, "no profile to mark: nothing is flowing for this subject")
            return {**outcome, "reason": "no profile found"}
        reply = flow.conn.events.upload(_batch(flow, mpid, marked), what=what)
    except MParticleError as exc:
        flow.note(what, f"could not: {exc.message}")
        return {**outcome, "reason": exc.message}
    flow.note(what, f"user attribute {attribute} {'set' if marked else 'removed'} (HTTP {reply.status})", mpid=mpid)
    return {**outcome, "set" if marked else "removed": True, "mpid": mpid}


def mark(flow: Flow) -> None:
    """After the erasure's submission: set the suppression attribute (kept in ``flow.extra_summary``)."""
    flow.extra_summary["suppression"] = _apply(flow, marked=True)


def unmark(flow: Flow) -> dict[str, Any]:
    """After the erasure is cancelled: remove the suppression attribute."""
    return _apply(flow, marked=False)

"""What every access, portability and erasure result adds about what lies beyond the connector's own steps: the
request's due date against mParticle's expected completion (:mod:`.deadlines`), and where mParticle forwarded
the request (:mod:`connector_mparticle.api.partners`).

Partners: ``developers/dsr-api/v3`` lists each output's forwarding status in a status's ``extensions``; mParticle
"can't guarantee that data is ultimately deleted by the integration partner" (``guides/data-subject-requests``).
So an erasure that mParticle completed but could not forward to a partner says so in its message, and its summary
lists every partner with its status (``partners``, ``partner_counts``, ``partners_failed``): mParticle's part is
still complete, and the result stays ``completed``; the partner needs a request of its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from connector_mparticle.api.partners import partner_summary
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.deadlines import PartOutlook, deadline, skip_waiting
from dsr_framework.models import Result, utcnow

__all__ = ["annotate"]


def _partners(flow: Flow) -> list[dict[str, Any]]:
    parts = flow.state.parts if flow.state is not None else []
    return [{"subject_request_id": p.subject_request_id, **entry} for p in parts for entry in p.partners or []]


def _parts(flow: Flow, now: datetime) -> list[PartOutlook]:
    """Each unfinished OpenDSR request of ``flow``'s request, a part not sent yet (a split request's second, held
    back) as if sent now."""
    state = flow.state
    assert state is not None
    first_sent = state.sent_at(flow.request.submitted_at)
    held = {p.subject_request_id: p for p in state.parts}
    outlooks = []
    for group in flow.groups:
        part = held.get(group.subject_request_id)
        if part is None:
            outlooks.append(PartOutlook(None, now, flow.request_type == "erasure"
                                        and skip_waiting(flow.request, flow.settings, now)))
        elif not part.done:
            outlooks.append(PartOutlook(part.expected, part.sent_at or first_sent, part.skip_waiting))
    return outlooks


def _deadline(flow: Flow, result: Result) -> tuple[str, dict[str, Any]]:
    """The message (naming a risk, while pending) and the summary's ``deadline``."""
    completed, now = result.status == "completed", utcnow()
    parts = [] if completed or flow.state is None else _parts(flow, now)
    outlook = deadline(flow.request, flow.settings, parts, now)
    entry = {**outlook.to_dict(), **({"expected_from": "completed"} if completed else {})}
    at_risk = outlook.at_risk and result.status == "pending"
    return (f"{result.message}; {outlook.sentence()}" if at_risk else result.message), entry


def _forwarding(flow: Flow, result: Result, message: str) -> tuple[str, dict[str, Any]]:
    """The message (naming partners a completed erasure did not reach) and the summary's partner entries."""
    partners = _partners(flow)
    if not partners:
        return message, {}
    entries = partner_summary(partners)
    failed = entries["partners_failed"]
    if failed and result.status == "completed" and flow.request_type == "erasure":
        message = f"{message}; mParticle could not forward the erasure to {', '.join(failed)}: ask them directly"
    return message, entries


def annotate(flow: Flow, result: Result) -> Result:
    """``result`` with ``summary.deadline`` and the partners' statuses, and a message that names any risk."""
    if result.status == "failed" and flow.state is None:
        return result  # nothing was submitted: there is no request to judge
    message, outlook = _deadline(flow, result)
    message, partners = _forwarding(flow, result, message)
    return replace(result, message=message, summary={**result.summary, "deadline": outlook, **partners})

"""The optional ``handle_cancel`` hook, where the manifest declares it: a cancel is honest either way.

A connector may withdraw a request (``completed``) or refuse because it is too late (``failed``, ``rejected``);
which one depends on how far the service got, so the check accepts both and judges what follows by the oracle:
a withdrawn deletion must never complete and must leave the subject in the service, and a refused one must go on
to completion as if nobody had asked.
"""

from __future__ import annotations

from dsr_framework.conformance.checks.registry import check
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.models import Result

__all__: list[str] = []


def _withdrawn(rt: Runtime, request_result: Result, cancelled: Result) -> None:
    """After a cancel the connector reported done: the subject is still there, and the deletion never completes."""
    oracle = rt.oracle("a cancelled deletion leaves the subject")
    subject = rt.target.existing_subject
    again = rt.run(rt.good, rt.request("deletion", subject), request_result.state)
    if again.result.status == "completed":
        raise CheckFailed("handle_cancel reported the deletion withdrawn, yet driving the deletion on afterwards "
                          f"completed it: {again.result.message}")
    if not rt.ask(oracle.exists, subject):
        raise CheckFailed(f"handle_cancel reported the deletion withdrawn ({cancelled.message}), yet the service no "
                          f"longer holds {rt.name_of(subject)}")


@check("cancel_is_honest",
       "where the manifest declares handle_cancel, cancelling a deletion just submitted either withdraws it (it never "
       "completes, the subject stays) or is refused as rejected (the deletion then completes); never anything else",
       runtime=True)
def cancel_is_honest(rt: Runtime, _: str | None) -> None:
    if "handle_cancel" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare handle_cancel (optional)")
    if "handle_deletion" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector declares no deletion to cancel")
    rt.prepare()
    request = rt.request("deletion", rt.target.existing_subject)
    first = rt.call(rt.good, request)
    cancelled = rt.cancel(rt.good, request, first.state)
    if cancelled.status == "completed":
        _withdrawn(rt, first, cancelled)
        return
    if cancelled.error is None or cancelled.error.error_class != "rejected":
        found = cancelled.error.error_class if cancelled.error else cancelled.status
        raise CheckFailed(f"handle_cancel ended {cancelled.status} ({found}); a cancel either withdraws the request "
                          f"(completed) or is refused as rejected: {cancelled.message}")
    if not first.final:
        final = rt.run(rt.good, request, first.state).result
        if final.status != "completed":
            raise CheckFailed(f"handle_cancel refused to withdraw the deletion, yet the deletion then ended "
                              f"{final.status}: {final.message}")

"""What the connector says while it works (logs, stdout, stderr), and what the host sees when a hook raises."""

from __future__ import annotations

from typing import Any

from dsr_framework import hookspecs
from dsr_framework.conformance import threads
from dsr_framework.conformance.checks.registry import check, declared_kinds
from dsr_framework.conformance.leaks import captured, output_problems
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import HOOK_FOR_TYPE, Result

__all__: list[str] = []


@check("no_secret_or_email_in_output",
       "no configured secret (any form, or 8+ characters of one) in logs, stdout or stderr; no personal data of the "
       "people a request involves there either (emails in any form, names, phone numbers)", runtime=True)
def no_secret_or_email_in_output(rt: Runtime, _: str | None) -> None:
    """The output of every runtime check is searched the same way (refused credentials, unknown subjects and
    the rest are searched in the checks that make them); this one makes a request of each kind and tests the
    connection, and names the leak as its own."""
    manifest = rt.cut.manifest
    with captured(only=threads.is_connector) as output:
        if "test_connection" in manifest.hooks:
            rt.connection(rt.good)
            rt.connection(rt.bad)
        rt.prepare()
        for kind in declared_kinds(rt.cut):
            rt.run(rt.good, rt.request(kind, rt.target.existing_subject))
    problems = output_problems(output.streams(), rt.cut.redactor, rt.cut.people())
    if problems:
        raise CheckFailed(problems[0])


@check("host_survives_raise", "an exception inside a hook becomes a failed result of class internal",
       runtime=True, params=hookspecs.HOOK_NAMES)
def host_survives_a_raise(rt: Runtime, hook: str) -> None:
    handle = rt.good
    if not handle.implements(hook):
        raise CheckSkipped(f"the connector does not declare {hook}")
    impl = handle.hookimpl(hook)

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("conformance: simulated defect inside the connector")

    original = impl.function
    setattr(impl, "function", explode)  # noqa: B010 - pluggy types it Final; swapped back below
    try:
        if hook == "test_connection":
            outcome = handle.test_connection()
            if outcome.ok or outcome.checks[0].error_class != "internal":
                raise CheckFailed("a test_connection that raises did not become a failed check of class internal")
        else:
            result = _call_request_hook(rt, handle, hook)
            if result.status != "failed" or result.error is None or result.error.error_class != "internal":
                raise CheckFailed(f"a {hook} that raises did not become a failed result of class internal")
    finally:
        setattr(impl, "function", original)  # noqa: B010


def _call_request_hook(rt: Runtime, handle: ConnectorHandle, hook: str) -> Result:
    """One call of ``hook`` for the existing subject: a request of its type, or a deletion to cancel."""
    subject = rt.target.existing_subject
    if hook == "handle_cancel":
        return handle.cancel(rt.request("deletion", subject))
    kind = next(k for k, h in HOOK_FOR_TYPE.items() if h == hook)
    return handle.handle(rt.request(kind, subject))

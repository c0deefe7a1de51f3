"""What each request kind does in the service, judged by the oracle: a connection test, refused credentials, an
access export, a deletion, an opt-out, an unknown subject, a repeated request."""

from __future__ import annotations

from collections.abc import Mapping

from dsr_framework.conformance.checks.registry import KINDS, check, hook_of
from dsr_framework.conformance.exports import absent, export_texts
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.conformance.target import Oracle
from dsr_framework.models import Result
from dsr_framework.redact import mask_email

__all__ = ["carry_out", "judge_export", "judge_repeat"]

_REFUSAL_CLASSES = ("authentication", "configuration")


def _completed(result: Result, hook: str, what: str) -> None:
    if result.status != "completed":
        kind = f" ({result.error.error_class})" if result.error else ""
        raise CheckFailed(f"{hook} ended {result.status}{kind} {what}, not completed: {result.message}")


@check("host_loads_target_configs",
       "load_host accepts the connector with the target's good and bad configuration", runtime=True)
def host_loads_it(rt: Runtime, _: str | None) -> None:
    rt.handle("good")
    rt.handle("bad")
    declared = rt.cut.manifest.regulations
    if rt.target.regulation not in declared:
        raise CheckFailed(f"the target's regulation {rt.target.regulation!r} is not among the manifest's regulations "
                          f"({', '.join(declared)}): a host would send the connector no such request")


@check("connection_with_good_credentials", "test_connection passes, with a message per check",
       runtime=True)
def connection_succeeds(rt: Runtime, _: str | None) -> None:
    if "test_connection" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare test_connection")
    result = rt.connection(rt.good)
    failed = [f"{c.name}: {c.message}" for c in result.checks if not c.ok]
    if not result.ok:
        raise CheckFailed(f"test_connection failed with the good config: {'; '.join(failed) or result.message}")
    if not all(c.message for c in result.checks):
        raise CheckFailed("test_connection returned a check without a message")


@check("connection_with_refused_credentials",
       "test_connection fails (a result, not an exception) when the service refuses the credentials", runtime=True)
def connection_fails_cleanly(rt: Runtime, _: str | None) -> None:
    if "test_connection" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare test_connection")
    result = rt.connection(rt.bad)
    if result.ok:
        raise CheckFailed("test_connection passed with credentials the service refuses")
    if any(c.error_class == "internal" for c in result.checks):
        raise CheckFailed(f"test_connection raised instead of returning a failed check: {result.message}")


@check("refused_credentials_fail",
       "with credentials the service refuses, the request ends failed (authentication or configuration) and "
       "changes nothing", runtime=True, params=KINDS)
def refused_credentials_fail(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    subject = rt.target.existing_subject
    oracle = rt.target.oracle
    writes = rt.ask(oracle.writes) if oracle is not None else 0
    final = rt.run(rt.bad, rt.request(kind, subject)).result
    if final.status != "failed":
        raise CheckFailed(f"{hook} ended {final.status} with credentials the service refuses; it must end failed "
                          f"(class authentication or configuration): {final.message}")
    if final.error is None or final.error.error_class not in _REFUSAL_CLASSES:
        found = final.error.error_class if final.error else "none"
        raise CheckFailed(f"{hook} failed with class {found} for refused credentials; expected authentication or "
                          f"configuration: {final.message}")
    if oracle is not None:
        _nothing_changed(rt, oracle, kind, hook, writes)


def _nothing_changed(rt: Runtime, oracle: Oracle, kind: str, hook: str, writes: int) -> None:
    """Fail unless the oracle says a refused request left the subject as it was, with no new write."""
    subject = rt.target.existing_subject
    if kind == "deletion" and not rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} with refused credentials, yet the subject is gone from the service")
    if kind == "opt_out" and rt.ask(oracle.opted_out, subject, rt.regulation_for(kind)):
        raise CheckFailed(f"{hook} with refused credentials, yet the service records an opt-out")
    if rt.ask(oracle.writes) != writes:
        raise CheckFailed(f"{hook} with refused credentials, yet the service recorded a write")


def _held(rt: Runtime, subject: Mapping[str, str]) -> list[str]:
    oracle = rt.oracle("an access exports the subject's data")
    held = [str(v) for v in rt.ask(oracle.held_data, subject)]
    if not held:
        raise CheckFailed(f"the target's oracle reports no data held for {rt.name_of(subject)}, so no export can be "
                          "compared: prepare() must seed some")
    return held


def _before(rt: Runtime, kind: str, subject: Mapping[str, str], regulation: str) -> list[str]:
    """What must hold before a request of ``kind`` for ``subject`` can be judged (the held data, for access)."""
    oracle = rt.oracle(f"a {kind} request is carried out")
    if kind == "access":
        return _held(rt, subject)
    if kind == "deletion" and not rt.ask(oracle.exists, subject):
        raise CheckFailed(f"the target's oracle says {rt.name_of(subject)} does not exist before the deletion: "
                          "prepare() must create it")
    if kind == "opt_out" and rt.ask(oracle.opted_out, subject, regulation):
        raise CheckFailed(f"the target's oracle says {rt.name_of(subject)} has opted out before the request: "
                          "prepare() must reset it")
    return []


def judge_export(hook: str, final: Result, held: list[str], who: str) -> None:
    """An access completed with at least one file, together holding every value the service holds."""
    _completed(final, hook, f"for {who}, whom the service holds data for")
    if not final.files:
        raise CheckFailed(f"{hook} completed for a subject the service holds data for, but listed no file")
    missing = absent(held, export_texts(final.files))
    if missing:
        example = mask_email(str(missing[0]))[:40]
        raise CheckFailed(f"{hook}'s files lack {len(missing)} of the {len(held)} values the service holds for the "
                          f"subject (such as {example!r})")


def _after(rt: Runtime, kind: str, final: Result, identities: Mapping[str, str], regulation: str,
           held: list[str]) -> None:
    hook, oracle = hook_of(kind), rt.oracle(f"a {kind} request is carried out")
    subject, who = rt.target.existing_subject, rt.name_of(identities)
    if kind == "access":
        judge_export(hook, final, held, who)
        return
    _completed(final, hook, f"for {who}, whom the service holds")
    if kind == "deletion" and rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} reported completed, but the service still holds the subject (its oracle found "
                          f"{rt.name_of(subject)} after the deletion)")
    if kind == "opt_out" and not rt.ask(oracle.opted_out, subject, regulation):
        raise CheckFailed(f"{hook} reported completed, but the service does not record the opt-out (its oracle "
                          f"says the subject has not opted out under {regulation})")


def carry_out(rt: Runtime, kind: str, identities: Mapping[str, str] | None = None, *,
              regulation: str | None = None) -> Result:
    """Prepare, run one request of ``kind`` naming the existing subject (by ``identities``, default all of them)
    with the good configuration, and judge its outcome by the oracle: the export holds what the service holds,
    the subject is gone, or its opt-out is recorded under ``regulation``."""
    rt.hook_for(kind)
    rt.prepare()
    subject = rt.target.existing_subject
    regulation = regulation or rt.regulation_for(kind)
    held = _before(rt, kind, subject, regulation)
    request = rt.request(kind, identities or subject, regulation)
    final = rt.run(rt.good, request).result
    _after(rt, kind, final, request.identities, regulation, held)
    return final


@check("access_exports_subject_data",
       "access completes with at least one file, each as listed, together holding what the service holds",
       runtime=True)
def access_exports_the_data(rt: Runtime, _: str | None) -> None:
    carry_out(rt, "access")


@check("deletion_removes_subject", "after a completed deletion the service no longer holds the subject",
       runtime=True)
def deletion_leaves_the_subject_gone(rt: Runtime, _: str | None) -> None:
    carry_out(rt, "deletion")


@check("opt_out_recorded", "after a completed opt-out the service records the subject as opted out",
       runtime=True)
def opt_out_is_recorded(rt: Runtime, _: str | None) -> None:
    carry_out(rt, "opt_out")


@check("unknown_subject_completes",
       "a request for a subject the service never had completes (nothing to do) and creates nothing",
       runtime=True, params=KINDS)
def unknown_subject_completes(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    subject = rt.target.missing_subject
    final = rt.run(rt.good, rt.request(kind, subject)).result
    _completed(final, hook, "for a subject the service never had (nothing to do is a success)")
    oracle = rt.target.oracle
    if oracle is not None and rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook} for an unknown subject created it in the service")


@check("repeat_is_idempotent",
       "calling again with the same request id and no state makes no new write in the service, and ends as the "
       "first call did", runtime=True, params=KINDS)
def repeated_request_is_idempotent(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    rt.prepare()
    oracle = rt.oracle("a repeated request makes no second write")
    request = rt.request(kind, rt.target.existing_subject)
    first = rt.run(rt.good, request).result
    after_first = rt.ask(oracle.writes)
    again = rt.run(rt.good, request).result  # no state: as after a crash before the host stored it
    after_second = rt.ask(oracle.writes)
    if after_second != after_first:
        raise CheckFailed(f"calling {hook} again with the same request id made {after_second - after_first} new "
                          "write(s) in the service; a repeated call must find the earlier submission")
    judge_repeat(hook, first, again, "in the same process")


def judge_repeat(hook: str, first: Result, again: Result, where: str) -> None:
    """A repeated request ends as the first one did: a repeat of a completed request is not a failure."""
    if again.status != first.status:
        kind = f" ({again.error.error_class})" if again.error else ""
        raise CheckFailed(f"calling {hook} again with the same request id ({where}) ended {again.status}{kind} where "
                          f"the first call ended {first.status}: a repeat must find the earlier submission and "
                          f"report it, not fail: {again.message}")

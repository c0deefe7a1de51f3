"""Nobody but the subject: bystanders the target seeds (one a namesake of the subject) stay as they were, every
export holds its own subject's data only, one after another and with requests running at once.

:meth:`dsr_framework.conformance.runtime.Runtime.run` asks the oracle about everyone after every request of
every check; these checks make the requests where that matters most.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dsr_framework.conformance.checks.outcomes import judge_export
from dsr_framework.conformance.checks.registry import KINDS, check, declared_kinds
from dsr_framework.conformance.outcomes import CheckFailed, MissingPiece
from dsr_framework.conformance.people import Standing, harm
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.drive import Driven
from dsr_framework.models import DsrRequest, Result

__all__: list[str] = []


def _seeded_bystanders(rt: Runtime) -> list[Mapping[str, str]]:
    """The bystanders, once ``prepare()`` has seeded them (each there, with data of their own)."""
    if not rt.target.bystanders:
        raise MissingPiece("the conformance target names no bystanders, so the harness cannot check that a request "
                           "touches nobody but its subject: add ConformanceTarget(bystanders=[...]), other people "
                           "prepare() seeds with data of their own (one a namesake of existing_subject)")
    oracle = rt.oracle("a request touches nobody but its subject")
    rt.prepare()
    for person in rt.target.bystanders:
        if not rt.ask(oracle.exists, person) or not rt.ask(oracle.held_data, person):
            raise CheckFailed(f"the target's oracle does not find {rt.name_of(person)} with data of their own after "
                              "prepare(): prepare() must seed every bystander")
    return list(rt.target.bystanders)


@check("others_left_untouched",
       "a request for the subject leaves every bystander as it was (not erased, not opted out, data unchanged) "
       "and exports none of their data", runtime=True, params=KINDS)
def others_left_untouched(rt: Runtime, kind: str) -> None:
    rt.hook_for(kind)
    _seeded_bystanders(rt)
    rt.run(rt.good, rt.request(kind, rt.target.existing_subject))  # judged for everyone else by run()


@check("exports_kept_apart",
       "access for the subject, then for each bystander in turn: each export holds its own subject's data and "
       "nobody else's (no export handed on to the next person)", runtime=True)
def exports_kept_apart(rt: Runtime, _: str | None) -> None:
    hook = rt.hook_for("access")
    bystanders = _seeded_bystanders(rt)
    oracle = rt.oracle("each export holds its own subject's data")
    for person in [rt.target.existing_subject, *bystanders]:
        held = [str(v) for v in rt.ask(oracle.held_data, person)]
        final = rt.run(rt.good, rt.request("access", person)).result
        judge_export(hook, final, held, rt.name_of(person))


def _at_once(rt: Runtime, kind: str, people: list[Mapping[str, str]]) -> list[tuple[DsrRequest, Driven]]:
    """``concurrent_requests`` requests of ``kind``, in rounds of one request per person at the same moment (no
    person has two requests running at once); each request and its drive."""
    done: list[tuple[DsrRequest, Driven]] = []
    for _ in range(math.ceil(rt.target.concurrent_requests / len(people))):
        requests = [rt.request(kind, person) for person in people]
        outcomes = rt.together([lambda r=r: rt.run(rt.good, r) for r in requests])  # type: ignore[misc]
        for outcome in outcomes:
            if isinstance(outcome, CheckFailed):
                raise CheckFailed(f"{kind}: {outcome}")
        done += [(r, o) for r, o in zip(requests, outcomes, strict=True) if isinstance(o, Driven)]
    return done


def _deferred(result: Result) -> bool:
    """A request the connector (or the service) put off for now (its rate limit, a request of the same person
    still in progress): a host retries it later. Each person still needs one request that completed."""
    return result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"


@check("concurrent_requests_kept_apart",
       "requests for different people, run at the same moment (rounds of one per person), each reach their own "
       "subject: every export holds its own subject's data and nobody else's, every opt-out is recorded for its "
       "own subject", runtime=True)
def concurrent_requests_kept_apart(rt: Runtime, _: str | None) -> None:
    kinds = declared_kinds(rt.cut, ("access", "opt_out"))
    if not kinds:
        rt.hook_for("access")  # skips, naming what is missing
    rt.prepare()
    before = rt.standings()
    try:
        for kind in kinds:
            _each_reached_its_own(rt, kind, before)
        _nobody_else_touched(rt, before, "opt_out" in kinds)
    except CheckFailed as exc:
        raise CheckFailed(f"with requests for {len(rt.everyone())} people at the same moment: {exc}") from None


def _each_reached_its_own(rt: Runtime, kind: str, before: dict[int, Standing]) -> None:
    """Every person had a request of ``kind`` complete; each export holds its own subject's data only."""
    people = rt.everyone()
    done: set[int] = set()
    for request, driven in _at_once(rt, kind, people):
        index = people.index(request.identities)
        if _deferred(driven.result):
            continue
        done.add(index)
        if kind == "access":
            judge_export("handle_access", driven.result, list(before[index].held), rt.name_of(people[index]))
            rt.check_export_is_theirs("handle_access", request, driven.result, before)
    missed = [person for index, person in enumerate(people) if index not in done]
    if missed:
        raise CheckFailed(f"none of the {kind} requests for {rt.name_of(missed[0])} completed")


def _nobody_else_touched(rt: Runtime, before: dict[int, Standing], opted_out: bool) -> None:
    oracle = rt.oracle("requests run at once reach their own subjects")
    after = rt.standings()
    for index, person in enumerate(rt.everyone()):
        what = harm(before[index], after[index], "opt_out")
        if what is not None:
            raise CheckFailed(f"{rt.name_of(person)} was left {what}")
        if opted_out and not rt.ask(oracle.opted_out, person, rt.regulation_for("opt_out")):
            raise CheckFailed(f"the opt-out of {rt.name_of(person)} was not recorded (a request reached someone "
                              "else's subject, or none)")

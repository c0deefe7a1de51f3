"""The oracle, cross-checked: the harness trusts a connector only as far as it can trust its witness.

Every question a check asks is asked twice in a row (and of the target's witness, when it declares one):
:meth:`dsr_framework.conformance.runtime.Runtime.ask`. This check adds what one question cannot show: the
oracle finds each person by each of their identities alone (an oracle that sees one category cannot judge a
connector that ignores the others), and every change it reports (a subject gone, an opt-out recorded) comes
with a write it counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsr_framework.conformance.checks.outcomes import carry_out
from dsr_framework.conformance.checks.registry import check, declared_kinds
from dsr_framework.conformance.outcomes import CheckFailed
from dsr_framework.conformance.runtime import Runtime

__all__: list[str] = []


def _finds_by_each(rt: Runtime, person: Mapping[str, str], there: bool) -> None:
    oracle = rt.oracle("the oracle's answers can be trusted")
    whole = bool(rt.ask(oracle.exists, person))
    if whole is not there:
        state = "does not find" if there else "still finds"
        raise CheckFailed(f"the target's oracle {state} {rt.name_of(person)}"
                          + (" after prepare(): prepare() must seed it" if there else " after its deletion"))
    for category, value in person.items():
        if bool(rt.ask(oracle.exists, {category: value})) is not there:
            raise CheckFailed(f"the target's oracle answers exists() for {rt.name_of({category: value})} otherwise "
                              f"than for the whole subject ({whole}): an oracle must find a person by each identity "
                              "the connector may be sent, or it shares the blind spot of a connector that ignores one")


def _changes_are_writes(rt: Runtime, kind: str) -> None:
    oracle = rt.oracle("the oracle's answers can be trusted")
    rt.prepare()
    writes = rt.ask(oracle.writes)
    carry_out(rt, kind)  # judged by the oracle: the subject gone, or the opt-out recorded
    if rt.ask(oracle.writes) <= writes:
        raise CheckFailed(f"the target's oracle reports the {kind} carried out, yet counted no write in the service: "
                          "writes() must count every change the service takes, or it cannot show a repeat made none")
    if kind == "deletion":
        _finds_by_each(rt, rt.target.existing_subject, there=False)


@check("oracle_answers_consistent",
       "the oracle finds every person by each of their identities alone, answers each question the same way "
       "twice (and as the target's witness does), and counts a write for every change it reports", runtime=True)
def oracle_answers_consistent(rt: Runtime, _: str | None) -> None:
    rt.prepare()
    for person in rt.everyone():
        _finds_by_each(rt, person, there=True)
    _finds_by_each(rt, rt.target.missing_subject, there=False)
    for kind in declared_kinds(rt.cut, ("opt_out", "deletion")):
        _changes_are_writes(rt, kind)

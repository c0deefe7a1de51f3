"""What the manifest and the credentials schema declare, compared with what the connector does: a connection
test that only reads, every declared regulation, every declared identity category, only declared settings, and
the declared rate limits. (A ``synchronous`` capability that returns ``pending`` fails whichever check sees it:
see :meth:`dsr_framework.conformance.runtime.Runtime.call`.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from dsr_framework.conformance import hoststate
from dsr_framework.conformance.checks.outcomes import carry_out
from dsr_framework.conformance.checks.registry import KINDS, REGULATIONS, check, declared_kinds, hook_of
from dsr_framework.conformance.configwatch import undeclared_in
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.people import harm
from dsr_framework.conformance.rates import excess, too_fast
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.manifest import RateLimit
from dsr_framework.models import DsrRequest, Result

__all__: list[str] = []

#: The most requests the rate check fires at once: more would only measure the machine running the harness.
MAX_BURST = 64


@check("connection_test_changes_nothing",
       "test_connection, with good and with refused credentials, makes no write in the service and changes nobody",
       runtime=True)
def connection_test_changes_nothing(rt: Runtime, _: str | None) -> None:
    if "test_connection" not in rt.cut.manifest.hooks:
        raise CheckSkipped("the connector does not declare test_connection")
    rt.prepare()
    rt.oracle("a connection test changes nothing")
    before = rt.standings()
    rt.connection(rt.good)  # each fails the check if the oracle counts a write
    rt.connection(rt.bad)
    after = rt.standings()
    for index, person in enumerate(rt.everyone()):
        what = harm(before[index], after[index], None)
        if what is not None:
            raise CheckFailed(f"test_connection left {rt.name_of(person)} {what}: a connection test only reads")


@check("regulation_served",
       "for each regulation the manifest declares besides the target's, access exports the data, deletion removes "
       "the subject and opt-out is recorded under that regulation", runtime=True, params=REGULATIONS)
def regulation_served(rt: Runtime, regulation: str) -> None:
    served = [k for k in declared_kinds(rt.cut) if regulation in rt.cut.manifest.regulations_for(hook_of(k))]
    if not served:
        raise CheckSkipped(f"the manifest's regulations do not include {regulation}, so a host sends none")
    kinds = [k for k in served if rt.regulation_for(k) != regulation]
    if not kinds:
        raise CheckSkipped(f"{regulation} is the target's regulation: every other check sends it")
    for kind in kinds:
        carry_out(rt, kind, regulation=regulation)


@check("identity_categories_honoured",
       "a request naming the subject by any one identity category the capability declares is carried out as a "
       "request naming it by all of them", runtime=True, params=KINDS)
def identity_categories_honoured(rt: Runtime, kind: str) -> None:
    hook = rt.hook_for(kind)
    capability = rt.cut.manifest.capability(hook)
    declared = list(capability.identifier_categories) if capability is not None else []
    subject = rt.target.existing_subject
    carried = [category for category in declared if category in subject]
    if len(declared) > 1 and len(carried) < 2:
        raise MissingPiece(f"{hook} declares the identity categories {', '.join(declared)}, but existing_subject "
                           f"carries only {', '.join(carried) or 'none of them'}: give it a value in at least two "
                           "(ideally each) of them, so the harness can send each alone")
    if len(carried) < 2:
        raise CheckSkipped(f"{hook} declares one identity category; every other check sends it")
    for category in carried:
        carry_out(rt, kind, {category: subject[category]})


@check("config_keys_declared",
       "the target's configurations use only settings the credentials schema declares, and no hook looks up one "
       "it does not declare", runtime=True)
def config_keys_declared(rt: Runtime, _: str | None) -> None:
    declared = rt.cut.declared_settings()
    for which, config in (("good_config", rt.target.good_config), ("bad_config", rt.target.bad_config)):
        extra = undeclared_in(config, declared)
        if extra:
            raise CheckFailed(f"the target's {which} holds setting(s) the credentials schema does not declare: "
                              f"{', '.join(extra)} (declare them, with a title and description)")
    if "test_connection" in rt.cut.manifest.hooks:
        rt.connection(rt.good)  # the other checks' hook calls were watched too
    if rt.cut.undeclared:
        raise CheckFailed("the hooks looked up setting(s) the credentials schema does not declare: "
                          f"{', '.join(rt.cut.undeclared)}")


def _burst_hook(rt: Runtime) -> str:
    for kind in declared_kinds(rt.cut, ("opt_out", "access", "deletion")):  # the cheapest first: usually one step
        return kind
    raise CheckSkipped("the connector declares no request hook")


def _tightest(rt: Runtime, used: Counter[str]) -> tuple[int, RateLimit] | None:
    """The per-second limit a request that makes ``used`` calls (per API) passes soonest, and how many such
    requests at once pass it (None: it counts against no per-second limit)."""
    sizes = [(math.floor(limit.limit / used[limit.api]) + 1, limit) for limit in rt.cut.manifest.rate_limits
             if used[limit.api] and limit.per == "second"]
    return min(sizes, key=lambda pair: pair[0], default=None)


def _probe(rt: Runtime, kind: str, calls: Callable[[], Sequence[Sequence[Any]]]) -> tuple[int, RateLimit]:
    """One request of ``kind``, to learn which APIs it calls: the burst that would pass a limit, and that limit."""
    rt.prepare()
    seen = len(rt.peek(calls))
    rt.call(rt.good, rt.request(kind, rt.target.existing_subject))
    found = _tightest(rt, Counter(str(entry[1]) for entry in rt.peek(calls)[seen:]))
    if found is None or found[0] > MAX_BURST:
        raise CheckSkipped(f"a {kind} request counts against no per-second limit a burst of {MAX_BURST} requests "
                           "could pass")
    return found


def _burst(rt: Runtime, requests: list[DsrRequest]) -> list[Result | CheckFailed]:
    """One light call for each of ``requests``, all at once; the host process judged once around them all (light
    calls have no guard of their own: it would slow the burst down to the harness's pace)."""
    process = hoststate.snapshot()
    outcomes = rt.together([lambda r=r: rt.call(rt.good, r, light=True) for r in requests])  # type: ignore[misc]
    changed = process.changes(own=rt.cut.package)
    if changed:
        process.restore()
        raise CheckFailed(f"{len(requests)} requests at once changed the host process's {'; '.join(changed)}")
    return outcomes


@check("declared_rate_limits_kept",
       "a burst of requests at once, enough to pass the tightest per-second limit they count against, reaches the "
       "service spread over that second, and no window holds far more calls than a declared limit", runtime=True)
def declared_rate_limits_kept(rt: Runtime, _: str | None) -> None:
    oracle = rt.oracle("the connector keeps to its declared rate limits")
    calls = getattr(oracle, "calls", None)
    if calls is None:
        raise MissingPiece("the target's oracle has no calls() method, so the harness cannot see how fast the "
                           "connector calls the service: add calls() returning each API call the service received, "
                           "as (seconds, api) with the api named as in the manifest's rate_limits")
    kind = _burst_hook(rt)
    size, limit = _probe(rt, kind, calls)
    before = rt.standings()
    since = max((entry[0] for entry in rt.peek(calls)), default=float("-inf"))
    requests = [rt.request(kind, rt.target.existing_subject) for _ in range(size)]
    outcomes = _burst(rt, requests)
    seen = rt.peek(calls)
    found = too_fast(seen, limit, since) or next(iter(excess(seen, rt.cut.manifest.rate_limits, since)), None)
    if found is not None:
        raise CheckFailed(f"with {size} {kind} requests at once, the connector {found}")
    failures = [o for o in outcomes if not isinstance(o, Result)]
    if failures:
        raise failures[0]
    rt.check_everyone(requests[0], before, f"{size} {kind} requests at once")

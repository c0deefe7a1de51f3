"""Processes: a request repeated and resumed after the host restarts (in a fresh process), and the host's own
process left as the connector found it by every hook call.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from dsr_framework.conformance.checks.outcomes import judge_export, judge_repeat
from dsr_framework.conformance.checks.registry import KINDS, check, declared_kinds, hook_of
from dsr_framework.conformance.fresh import FreshProcess
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.models import HOOK_FOR_TYPE, DsrRequest, Result

__all__: list[str] = []

_SLACK_SECONDS = 15.0  #: what a fresh process may take beyond a request's budget (starting, importing)


def _importable(rt: Runtime) -> str:
    """The module a fresh process imports the connector from; ``CheckSkipped`` when there is none."""
    plugin = rt.cut.plugin
    name = plugin.__name__ if isinstance(plugin, ModuleType) else None
    with rt.trusted():
        found = name is not None and importlib.util.find_spec(name) is not None
    if not found:
        raise CheckSkipped("the connector was handed to the harness as an object, not installed as a module, so a "
                           "fresh process cannot load it (run it through its dsr.connectors entry point)")
    assert name is not None
    return name


@contextlib.contextmanager
def _fresh(rt: Runtime) -> Iterator[FreshProcess]:
    manifest, target = rt.cut.manifest, rt.target
    budget = max((rt.cut.budget(hook_of(k)) for k in KINDS), default=60.0)
    setup = {"name": rt.cut.name, "plugin": _importable(rt), "config": dict(target.good_config),
             "hosts": [*manifest.egress_hosts, *target.allowed_hosts], "writable": [str(p) for p in
                                                                                   target.writable_paths],
             "call_seconds": rt.cut.call_limit(), "budget": budget, "max_calls": target.max_calls}
    with rt.trusted():
        child = FreshProcess(setup, str(rt.workspace.cwd), str(rt.workspace.tmp), budget + _SLACK_SECONDS)
    try:
        with child:
            yield child
    finally:
        rt.extra_output.append(child.stderr)
        rt.forget()


def _elsewhere(rt: Runtime, child: FreshProcess, request: DsrRequest, state: Mapping[str, Any] | None,
               what: str) -> Result:
    """Drive ``request`` in the fresh process; its final result, judged as a result from the harness's own."""
    hook = HOOK_FOR_TYPE[request.type]
    answer = child.run(request, state)
    if answer.violations:
        raise CheckFailed(f"{hook}, {what} in a fresh process: the connector {'; '.join(answer.violations)}")
    rt.judge_elsewhere(hook, request, answer.results, [])
    if answer.final is None:
        last = answer.results[-1] if answer.results else None
        action = last.action_required if last is not None else None
        why = f"waiting for a person ({action.error_class}: {action.message})" if action else "still pending"
        raise CheckFailed(f"{hook}, {what} in a fresh process, reached no final result: {answer.error or why}")
    return answer.final


def _outcome(rt: Runtime, kind: str, final: Result, held: list[str], what: str) -> None:
    hook, oracle, subject = hook_of(kind), rt.oracle("a fresh process finishes the work"), rt.target.existing_subject
    if final.status != "completed":
        kind_of = f" ({final.error.error_class})" if final.error else ""
        raise CheckFailed(f"{hook}, {what} in a fresh process, ended {final.status}{kind_of}: the state a host "
                          f"stores must be all it needs after a restart: {final.message}")
    if kind == "access":
        judge_export(hook, final, held, f"existing_subject ({what} in a fresh process)")
    elif kind == "deletion" and rt.ask(oracle.exists, subject):
        raise CheckFailed(f"{hook}, {what} in a fresh process, reported completed, but the service still holds the "
                          "subject")
    elif kind == "opt_out" and not rt.ask(oracle.opted_out, subject, rt.regulation_for(kind)):
        raise CheckFailed(f"{hook}, {what} in a fresh process, reported completed, but the service does not record "
                          "the opt-out")


def _restart(rt: Runtime, child: FreshProcess, kind: str) -> None:
    """One call here, the rest in the fresh process (resumed from the state), then the whole request again there
    from scratch: completed as before, with no new write."""
    hook, oracle = hook_of(kind), rt.oracle("a repeat in a fresh process makes no second write")
    rt.prepare()
    before = rt.standings()
    held = [str(v) for v in rt.ask(oracle.held_data, rt.target.existing_subject)] if kind == "access" else []
    request = rt.request(kind, rt.target.existing_subject)
    first = rt.call(rt.good, request)
    if not first.final:
        first = _elsewhere(rt, child, request, first.state, "resumed from its stored state")
        _outcome(rt, kind, first, held, "resumed from its stored state")
    writes = rt.ask(oracle.writes)
    again = _elsewhere(rt, child, request, None, "repeated with the same request id")
    judge_repeat(hook, first, again, "in a fresh process, as after a restart")
    new = rt.ask(oracle.writes) - writes
    if new:
        raise CheckFailed(f"calling {hook} again with the same request id in a fresh process made {new} new write(s) "
                          "in the service: what makes a request idempotent must live in the service or in the "
                          "stored state, not in the process's memory")
    _outcome(rt, kind, again, held, "repeated with the same request id")
    rt.check_everyone(request, before, f"{hook}, here and in a fresh process,")


@check("repeat_and_resume_in_fresh_process",
       "a request started here and resumed from its stored state in a fresh process completes; repeated there "
       "with the same id it ends completed again and makes no new write", runtime=True)
def repeat_and_resume_in_fresh_process(rt: Runtime, _: str | None) -> None:
    kinds = declared_kinds(rt.cut)
    if not kinds:
        raise CheckSkipped("the connector declares no request hook")
    with _fresh(rt) as child:
        for kind in kinds:
            _restart(rt, child, kind)


@check("host_process_left_as_found",
       "every hook call leaves the host process as it found it (TLS and socket defaults, environment, working "
       "directory, umask, logging, sys, threads) and the settings and request it was handed unchanged", runtime=True)
def host_process_left_as_found(rt: Runtime, _: str | None) -> None:
    if "test_connection" in rt.cut.manifest.hooks:
        rt.connection(rt.good)
    for kind in declared_kinds(rt.cut):
        rt.call(rt.good, rt.request(kind, rt.target.missing_subject))  # every call of every check is guarded

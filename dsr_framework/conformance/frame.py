"""The frame every runtime check runs in, and what it judges once the check is over.

:func:`run_runtime` gives the check fresh directories (:class:`~dsr_framework.conformance.files.Workspace`),
turns on the egress guard and the file watch, captures everything the connector says, and runs the check. Then,
whatever the check found: any connection or process the guard blocked, any path written or removed outside the
request's output directories (seen by the audit hooks, or left in the workspace), a secret or personal data in
the captured output (and in the output of the fresh processes the check started), and a declared rate limit
that the calls the oracle saw passed, each fails the check with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable

from dsr_framework.conformance import egress, threads
from dsr_framework.conformance.files import Workspace
from dsr_framework.conformance.filewatch import FileWatch
from dsr_framework.conformance.leaks import captured, output_problems
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.rates import excess
from dsr_framework.conformance.runtime import Runtime
from dsr_framework.conformance.session import ConnectorUnderTest

__all__ = ["run_runtime"]

Check = Callable[[Runtime, "str | None"], None]


def run_runtime(cut: ConnectorUnderTest, check: Check, param: str | None) -> None:
    """Run one runtime check on ``cut`` in its frame; returns if it passed, raises its outcome otherwise."""
    target = cut.target()
    manifest = cut.manifest
    workspace = Workspace()
    label = f"connector {cut.name!r}"
    guard = egress.EgressGuard.allowing((*manifest.egress_hosts, *target.allowed_hosts), label=label)
    watch = FileWatch([str(p) for p in target.writable_paths], label=label)
    outcome: Exception | None = None
    try:
        with captured(only=threads.is_connector) as output, workspace.entered(), guard.active(), watch.active():
            runtime = Runtime(cut, target, workspace, watch)
            started = _last_call(runtime)
            try:
                check(runtime, param)
            except (CheckFailed, CheckSkipped, MissingPiece) as exc:
                outcome = exc
            rates = _rate_problems(runtime, started)  # asked here: the oracle is asked inside the frame
        cut.pass_on(output.stdout, output.stderr)
        streams = {**output.streams(), "child processes' output": "\n".join(runtime.extra_output)}
        problems = _frame_problems(cut, guard, watch, workspace, streams) + rates
        problems = [p for p in problems if p not in str(outcome or "")]  # said once, by the check itself
        if problems:
            earlier = f"\n(the check also found: {outcome})" if isinstance(outcome, CheckFailed) else ""
            raise CheckFailed("; ".join(problems) + earlier)
        if outcome is not None:
            raise outcome
    finally:
        workspace.remove()


def _frame_problems(cut: ConnectorUnderTest, guard: egress.EgressGuard, watch: FileWatch, workspace: Workspace,
                    streams: dict[str, str]) -> list[str]:
    problems = []
    if guard.violations:
        problems.append(f"the connector {'; '.join(dict.fromkeys(guard.violations))} (only the manifest's "
                        "egress_hosts and the target may be contacted; no process may be started)")
    strays = [str(workspace.root / s) for s in workspace.strays()]
    outside = list(dict.fromkeys([*watch.problems(), *(f"wrote {s}" for s in strays)]))
    if outside:
        problems.append("wrote outside the request's output directory (" + ", ".join(outside[:5]) + "); a "
                        "connector writes its files there and nowhere else, not even for a moment")
    return problems + output_problems(streams, cut.redactor, cut.people())


def _last_call(runtime: Runtime) -> float | None:
    """The time of the last call the service saw (None: the oracle does not report calls)."""
    calls = getattr(runtime.target.oracle, "calls", None)
    if calls is None:
        return None
    seen = [entry[0] for entry in runtime.peek(calls) if entry]
    return max(seen) if seen else float("-inf")


def _rate_problems(runtime: Runtime, since: float | None) -> list[str]:
    calls = getattr(runtime.target.oracle, "calls", None)
    if calls is None or since is None:
        return []
    found = excess(runtime.peek(calls), runtime.cut.manifest.rate_limits, since=since)
    return [f"the connector {found[0]}"] if found else []

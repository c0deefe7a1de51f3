"""What a runtime check works with: the target, handles loaded as a host loads them, and hook calls that are
each judged on the way.

Every hook call goes through :meth:`Runtime.call`: under the watchdog, inside a :class:`CallGuard` (the host
process, the objects handed over, threads left running), with the settings observed (undeclared keys), and its
result judged by :mod:`.result_rules` (no secret, plain-JSON state, a sane ``next_check_at``, ``pending`` only
from an asynchronous capability). Every request goes through :meth:`Runtime.run`: driven to a final result as
a host drives it, its files checked, and everyone else the service holds asked about afterwards (nobody may be
erased, opted out, changed or exported but the subject). The oracle's answers are cross-checked as they are
asked (:meth:`Runtime.ask`): the same question twice, and the target's witness, must agree.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from dsr_framework.conformance import egress, threads
from dsr_framework.conformance.exports import export_texts, present
from dsr_framework.conformance.files import Workspace
from dsr_framework.conformance.filewatch import FileWatch
from dsr_framework.conformance.guards import CallGuard
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.people import Standing, foreign_values, harm, standing
from dsr_framework.conformance.result_rules import carries_secret, check_files, judge
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.conformance.target import ConformanceTarget, Oracle
from dsr_framework.conformance.watchdog import Overran, call_with_limit
from dsr_framework.drive import Driven, StillPending, drive
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import HOOK_FOR_TYPE, ConnectionResult, DsrRequest, Result

__all__ = ["Runtime"]

T = TypeVar("T")
_WITNESSED = ("exists", "opted_out", "held_data")  #: the questions a witness must answer as the oracle does


def _plain(answer: Any) -> Any:
    """An answer in a form two answers can be compared in (a collection as its sorted values)."""
    if isinstance(answer, (bool, int, float, str)) or answer is None:
        return answer
    with contextlib.suppress(TypeError):
        return sorted(str(value) for value in answer)
    return answer


def _shown(answer: Any) -> str:
    """An answer as a message may show it: held data (personal data) only as a count."""
    plain = _plain(answer)
    return f"{len(plain)} value(s)" if isinstance(plain, list) else repr(plain)


class Runtime:
    """One runtime check's view of the connector under test and its target."""

    def __init__(self, cut: ConnectorUnderTest, target: ConformanceTarget, workspace: Workspace,
                 watch: FileWatch) -> None:
        self.cut = cut
        self.target = target
        self.workspace = workspace
        self.watch = watch
        self.extra_output: list[str] = []  #: what child processes wrote, judged with the check's own output
        self.judge_people = True  #: ask about everyone after each request (off while requests run at once)
        self._standings: dict[int, Standing] | None = None
        self._fresh = False  #: nothing has run since prepare()
        self._lock = threading.Lock()

    # -- the target's own code runs trusted: no guard, the usual directories --------------------------------

    @contextlib.contextmanager
    def trusted(self) -> Iterator[None]:
        with egress.paused(), self.workspace.left():
            yield

    def prepare(self) -> None:
        """Let the target (re)create the existing subject and the bystanders.

        ``prepare()`` seeds the same people the same way every time, so what the oracle says about everyone right
        after it is remembered for the rest of the run once two readings (after two calls) agree.
        """
        self.forget()
        if self.target.prepare is not None:
            with self.trusted():
                self.target.prepare()
        seeded = self.cut.seeded
        self._fresh = True
        if seeded.settled and seeded.standings is not None:
            self._standings = dict(seeded.standings)

    def forget(self) -> None:
        """Forget what the oracle said about everyone (the service changed outside :meth:`run`)."""
        self._standings = None
        self._fresh = False

    def oracle(self, purpose: str) -> Oracle:
        """The target's oracle; ``MissingPiece`` saying what to add when there is none."""
        if self.target.oracle is None:
            raise MissingPiece(f"the conformance target has no oracle, so the harness cannot check that {purpose}: "
                               "add ConformanceTarget(oracle=...) with exists(), opted_out(), held_data() and "
                               "writes() answered by the service itself (see docs/connector-authors.md)")
        return self.target.oracle

    def peek(self, question: Callable[..., T], *args: Any) -> T:
        """Ask the oracle (trusted code) a question once."""
        with self.trusted():
            return question(*args)

    def ask(self, question: Callable[..., T], *args: Any) -> T:
        """Ask the oracle a question twice in a row, and its witness too: the answers must agree."""
        first, second = self.peek(question, *args), self.peek(question, *args)
        name = getattr(question, "__name__", "a question")
        shown = f"{name}({', '.join(self.name_of(a) for a in args)})"
        if _plain(first) != _plain(second):
            raise CheckFailed(f"the target's oracle answered {shown} with {_shown(first)} and then {_shown(second)}, "
                              "with nothing in between: an oracle must report what the service holds, every time it "
                              "is asked")
        witness = self.target.witness
        if witness is not None and name in _WITNESSED and getattr(question, "__self__", None) is self.target.oracle:
            seen = self.peek(getattr(witness, name), *args)
            if _plain(seen) != _plain(first):
                raise CheckFailed(f"the target's oracle and its witness disagree on {shown}: {_shown(first)} against "
                                  f"{_shown(seen)}; one of them does not see the service as it is")
        return first

    # -- people -----------------------------------------------------------------------------------------------

    def everyone(self) -> list[Mapping[str, str]]:
        """The people the target seeds: the existing subject, then the bystanders."""
        return [self.target.existing_subject, *self.target.bystanders]

    def name_of(self, value: Any) -> str:
        """How a message names a subject (or any other argument) without showing personal data."""
        if not isinstance(value, Mapping):
            return repr(value)
        for name, person in (("existing_subject", self.target.existing_subject),
                             ("missing_subject", self.target.missing_subject),
                             *((f"bystanders[{i}]", p) for i, p in enumerate(self.target.bystanders))):
            if dict(value) == dict(person):
                return name
            if value.items() <= person.items():
                return f"{name} by its {', '.join(sorted(value))} alone"
        return f"a subject ({', '.join(sorted(value))})"

    def _person(self, identities: Mapping[str, str]) -> int | None:
        """Which of :meth:`everyone` ``identities`` name (all of them, or some of one person's)."""
        return next((i for i, p in enumerate(self.everyone()) if identities.items() <= p.items()), None)

    def standings(self) -> dict[int, Standing]:
        """What the oracle says about everyone now."""
        oracle = self.oracle("nobody but the subject is touched")
        regulations = self.cut.manifest.regulations
        return {i: standing(self.peek, oracle, person, regulations) for i, person in enumerate(self.everyone())}

    # -- handles and requests ------------------------------------------------------------------------------

    def handle(self, which: str) -> ConnectorHandle:
        """The connector loaded as a host loads it, with the target's ``good`` or ``bad`` configuration."""
        return self.cut.handle(which)

    @property
    def good(self) -> ConnectorHandle:
        return self.handle("good")

    @property
    def bad(self) -> ConnectorHandle:
        return self.handle("bad")

    def hook_for(self, kind: str) -> str:
        """The hook serving ``kind``; ``CheckSkipped`` when the connector does not declare it."""
        hook = HOOK_FOR_TYPE[kind]  # type: ignore[index]
        if hook not in self.cut.manifest.hooks:
            raise CheckSkipped(f"the connector does not declare {hook}, so {kind} requests are not part of its "
                               "contract")
        return hook

    def regulation_for(self, kind: str) -> str:
        """The regulation of a request of ``kind``: the target's, unless the capability narrows it to others."""
        served = self.cut.manifest.regulations_for(HOOK_FOR_TYPE[kind])  # type: ignore[index]
        return self.target.regulation if self.target.regulation in served or not served else served[0]

    def request(self, kind: str, subject: Mapping[str, str], regulation: str | None = None) -> DsrRequest:
        """A fresh request (new id, new output directory the connector may write in) for ``subject``."""
        with self._lock:
            output = self.workspace.output_dir()
            self.watch.allow([output])
        return DsrRequest(f"conformance-{uuid.uuid4().hex[:12]}", kind,  # type: ignore[arg-type]
                          regulation or self.regulation_for(kind),  # type: ignore[arg-type]
                          dict(subject), datetime.now(UTC), str(output))

    def together(self, calls: Sequence[Callable[[], T]]) -> list[T | CheckFailed]:
        """Run ``calls`` at the same moment, each in a thread of its own; each one's value or failure, in order.

        The oracle is not asked about everyone after each request meanwhile (the others are requested at the
        same time): the caller asks once they have all ended.
        """
        outcomes: list[T | CheckFailed] = [CheckFailed("did not run")] * len(calls)
        start = threading.Barrier(len(calls))

        def run(index: int, call: Callable[[], T]) -> None:
            start.wait()
            try:
                outcomes[index] = call()
            except CheckFailed as exc:
                outcomes[index] = exc
            except Exception as exc:  # noqa: BLE001 - handed back to the check, which reports it
                outcomes[index] = CheckFailed(f"a request run alongside others could not run: {type(exc).__name__}: "
                                              f"{exc}")

        workers = [threading.Thread(target=run, args=(i, c), name=f"conformance together {i}", daemon=True)
                   for i, c in enumerate(calls)]
        self.judge_people, judging = False, self.judge_people
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            self.judge_people = judging
            self.forget()
        return outcomes

    # -- calls -------------------------------------------------------------------------------------------------

    def _guarded(self, handle: ConnectorHandle, hook: str, function: Callable[[], T],
                 request: DsrRequest | None, light: bool = False) -> T:
        """One hook call under the watchdog and the call guard (only the watchdog when ``light``: a burst measures
        the connector's pace, not the harness's); ``CheckFailed`` naming whatever it broke."""
        guard = None if light else CallGuard(handle.config, request, self.cut.first_call(handle), self.cut.package)
        try:
            value, _ = call_with_limit(function, self.cut.call_limit(), hook,
                                       on_thread=guard.adopt if guard is not None else threads.adopt)
        except Overran as exc:
            raise CheckFailed(f"{hook} {exc} ({self.cut.call_limit_source()}): a hook must return within it, "
                              "pending if the work takes longer") from None
        problems = guard.problems() if guard is not None else []
        undeclared = self.cut.undeclared_reads()
        if undeclared:
            problems.append(f"looked up setting(s) its credentials schema does not declare: {', '.join(undeclared)} "
                            "(declare each in the schema, or stop reading it)")
        if problems:
            raise CheckFailed(f"{hook} " + "; ".join(problems))
        return value

    def connection(self, handle: ConnectorHandle) -> ConnectionResult:
        """``test_connection`` through the facade, under the call guard; it must change nothing in the service."""
        oracle = self.target.oracle
        writes = self.peek(oracle.writes) if oracle is not None else None
        result = self._guarded(handle, "test_connection", handle.test_connection, None)
        if carries_secret(self.cut, result):
            raise CheckFailed("a test_connection result carries a configured secret (or 8 or more characters of one)")
        if oracle is not None and self.peek(oracle.writes) != writes:
            raise CheckFailed("test_connection made a write in the service (its oracle counted one): a connection "
                              "test only reads, whatever the credentials")
        return result

    def call(self, handle: ConnectorHandle, request: DsrRequest, state: Mapping[str, Any] | None = None, *,
             light: bool = False) -> Result:
        """One hook call for ``request``, guarded and judged (see the module docstring)."""
        hook = HOOK_FOR_TYPE[request.type]
        with self._lock:  # the call may change the service: what the oracle said before no longer holds
            self._standings, self._fresh = None, False
        started = datetime.now(UTC)
        result = self._guarded(handle, hook, lambda: handle.handle(request, state), request, light)
        judge(self.cut, hook, result, started)
        return result

    def cancel(self, handle: ConnectorHandle, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        """One ``handle_cancel`` call for ``request``, guarded and judged like a request hook's."""
        with self._lock:
            self._standings, self._fresh = None, False
        started = datetime.now(UTC)
        result = self._guarded(handle, "handle_cancel", lambda: handle.cancel(request, state), request)
        judge(self.cut, "handle_cancel", result, started)
        return result

    def run(self, handle: ConnectorHandle, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Driven:
        """Drive ``request`` to a final result as a host does, failing the check on any contract breach."""
        hook = HOOK_FOR_TYPE[request.type]
        before = self._people_before()
        watched = len(self.watch.touched)
        max_calls, budget = self.target.max_calls, self.cut.budget(hook)
        try:
            driven = drive(lambda current: self.call(handle, request, current), state=state, budget=budget,
                           max_calls=max_calls, tick=0.05)
        except StillPending as exc:
            if exc.calls >= max_calls:
                raise CheckFailed(f"{hook} needed more than {max_calls} calls for one request (a busy loop; "
                                  f"ConformanceTarget.max_calls): {exc.result.message}") from None
            raise CheckFailed(f"{hook} did not reach a final result within its {budget:g}s budget "
                              f"(ConformanceTarget.budgets): {exc.result.message}") from None
        if driven.needs_person:
            action = driven.result.action_required
            assert action is not None
            raise CheckFailed(f"{hook} stopped, pending, waiting for a person to fix something ({action.error_class}: "
                              f"{action.message}) against a target set up to work")
        check_files(self.cut, hook, request, driven.result, self.watch.written()[watched:])
        if before is not None:
            self._check_people(hook, request, driven.result, before)
        return driven

    def _people_before(self) -> dict[int, Standing] | None:
        if not self.judge_people or self.target.oracle is None:
            return None
        with self._lock:
            cached, fresh = self._standings, self._fresh
            self._fresh = False
        if cached is not None:
            return cached
        found = self.standings()
        if fresh:
            self.cut.seeded.saw(found)
        return found

    def _check_people(self, hook: str, request: DsrRequest, final: Result, before: dict[int, Standing]) -> None:
        """Nobody but the subject changed, and an export holds nobody else's data."""
        self.check_everyone(request, before, hook)
        if request.type == "access" and final.status == "completed":
            self.check_export_is_theirs(hook, request, final, before)

    def check_everyone(self, request: DsrRequest, before: dict[int, Standing], how: str) -> None:
        """Since ``before``, nobody but ``request``'s subject changed, and it only as ``request`` may change it
        (``how`` names what was done, for the message: a hook, or several requests)."""
        after = self.standings()
        with self._lock:
            self._standings = after
        subject = self._person(request.identities)
        who = self.name_of(request.identities)
        for index, person in enumerate(self.everyone()):
            what = harm(before[index], after[index], request.type if index == subject else None)
            if what is not None:
                whom = "its own subject" if index == subject else self.name_of(person)
                raise CheckFailed(f"{how} for {who} left {whom} {what} (the oracle's answer before and after): a "
                                  f"{request.type} request may change its subject only, and only by carrying it out")

    def check_export_is_theirs(self, hook: str, request: DsrRequest, final: Result,
                               before: dict[int, Standing]) -> None:
        """The files of a completed access hold none of the data of anyone else the target seeds."""
        subject, who = self._person(request.identities), self.name_of(request.identities)
        texts = export_texts(final.files)
        own = before[subject].held if subject is not None else ()
        for index, person in enumerate(self.everyone()):
            if index == subject:
                continue
            found = present(foreign_values(own, request.identities, [(person, before[index].held)]), texts)
            if found:
                raise CheckFailed(f"{hook}'s export for {who} holds data of {self.name_of(person)} ({len(found)} of "
                                  "their values): an export holds its own subject's data and nobody else's")

    def judge_elsewhere(self, hook: str, request: DsrRequest, results: Sequence[Result],
                        written: Sequence[str]) -> None:
        """Judge results a hook returned in another process (the same rules, but for the call's own timing)."""
        for result in results:
            judge(self.cut, hook, result, None)
        if results and results[-1].final:
            check_files(self.cut, hook, request, results[-1], written)

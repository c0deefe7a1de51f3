"""One connector under test: imported under the egress guard, its manifest, its target; and the per-check
runtime through which every hook call goes (watchdog, polling discipline, results and files checked).
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TypeVar

from dsr_framework.conformance import egress
from dsr_framework.conformance.files import Workspace, listed_file_problems, unlisted_files_with_secrets
from dsr_framework.conformance.leaks import captured, leaked
from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.target import ENTRY_POINT_GROUP as TARGET_GROUP
from dsr_framework.conformance.target import ConformanceTarget, Oracle, TargetFactory
from dsr_framework.conformance.watchdog import Overran, call_with_limit
from dsr_framework.drive import Driven, StillPending, drive
from dsr_framework.host import ENTRY_POINT_GROUP, WITHHELD_MESSAGE, ConnectorHandle, entry_points, load_host
from dsr_framework.manifest import Manifest, load_manifest
from dsr_framework.models import HOOK_FOR_TYPE, ConnectionResult, DsrRequest, Result
from dsr_framework.redact import Redactor, mask_email
from dsr_framework.validation import SchemaViolation, secret_paths, secret_values

__all__ = ["DEFAULT_CALL_SECONDS", "DEFAULT_MIN_CHECK_INTERVAL", "ConnectorUnderTest", "Runtime"]

DEFAULT_CALL_SECONDS = 30.0  #: the per-call limit when the manifest declares none
DEFAULT_MIN_CHECK_INTERVAL = 1.0  #: the soonest next check when neither the target nor the manifest says
_CLOCK_SLACK = 0.002  #: next_check_at is written with millisecond precision

T = TypeVar("T")


def _imported(entry: metadata.EntryPoint, failure: str) -> tuple[Any, str | None]:
    """Load ``entry``: ``(its object, None)``, or ``(None, why not)`` for the checks that need it to report."""
    try:
        return entry.load(), None
    except Exception as exc:  # noqa: BLE001 - reported by the checks that need it
        return None, f"{failure}: {type(exc).__name__}: {exc}"


class ConnectorUnderTest:
    """Everything the checks need about one connector, loaded once per run and closed at the end."""

    def __init__(self, name: str, *, plugin: object | None = None,
                 target: TargetFactory | ConformanceTarget | None = None, redactor: Redactor | None = None) -> None:
        self.name = name
        self.redactor = redactor or Redactor()  #: the target's configured secrets, once it has started
        self.import_violations: list[str] = []
        self.import_observed = False
        self._plugin = plugin
        self._plugin_error: str | None = None
        self._factory: TargetFactory | None = None
        self._factory_error: str | None = None
        if isinstance(target, ConformanceTarget):
            self._factory = lambda: contextlib.nullcontext(target)
        elif target is not None:
            self._factory = target
        self._target: ConformanceTarget | None = None
        self._target_error: str | None = None
        self._started = False
        self._stack = ExitStack()
        self._loaded = False
        self._manifest: Manifest | None = None
        self._handles: dict[str, ConnectorHandle] = {}

    def __repr__(self) -> str:
        return f"ConnectorUnderTest({self.name!r})"

    # -- loading -------------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Import the target and the connector from their entry points with the egress guard on."""
        if self._loaded:
            return
        self._loaded = True
        target_ep = entry_points(TARGET_GROUP).get(self.name) if self._factory is None else None
        plugin_ep = entry_points().get(self.name) if self._plugin is None else None
        watched = [ep.module for ep in (target_ep, plugin_ep) if ep is not None]
        self.import_observed = bool(watched) and not any(module in sys.modules for module in watched)
        guard = egress.EgressGuard.allowing((), label=f"connector {self.name!r}, while being imported,")
        with guard.active():
            if target_ep is not None:
                self._factory, self._factory_error = _imported(target_ep, "its conformance target failed to import")
            if plugin_ep is not None:
                self._plugin, self._plugin_error = _imported(plugin_ep, f"connector {self.name!r} failed to import")
        self.import_violations = list(guard.violations)

    @property
    def plugin(self) -> object:
        """The connector object (its hook implementations); ``CheckFailed`` if it cannot be had."""
        self._load()
        if self._plugin is None and self._plugin_error is None and self._factory is not None:
            target = self._start()
            self._plugin = target.plugin if target is not None else None
        if self._plugin is None:
            raise CheckFailed(self._plugin_error or f"no connector {self.name!r} in the {ENTRY_POINT_GROUP!r} "
                              "entry-point group (and its target names no plugin)")
        return self._plugin

    @property
    def manifest(self) -> Manifest:
        """The validated manifest (read once); ``CheckFailed`` naming every problem otherwise."""
        if self._manifest is None:
            try:
                self._manifest = load_manifest(self.plugin)
            except SchemaViolation as exc:
                raise CheckFailed(f"the manifest does not match manifest.schema.json:\n{exc}") from None
            except CheckFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - any unreadable manifest is the connector's defect
                raise CheckFailed(f"the manifest cannot be read: {type(exc).__name__}: {exc}") from None
        return self._manifest

    def handle(self, which: str) -> ConnectorHandle:
        """The connector loaded as a host loads it, with the target's ``good`` or ``bad`` configuration."""
        if which not in self._handles:
            target = self.target()
            config = target.good_config if which == "good" else target.bad_config
            host = load_host({"connectors": {self.name: {"enabled": True, "config": dict(config)}}},
                             plugins={self.name: self.plugin}, use_entry_points=False)
            if host.problems:
                raise CheckFailed(f"the host refused to load the connector with the target's {which} config: "
                                  + "; ".join(p.message for p in host.problems))
            self._handles[which] = host.connector(self.name)
        return self._handles[which]

    # -- the target ----------------------------------------------------------------------------------------

    def _start(self) -> ConformanceTarget | None:
        self._load()
        if not self._started and self._factory is not None:
            self._started = True
            try:
                self._target = self._stack.enter_context(self._factory())
            except Exception as exc:  # noqa: BLE001 - the target is the author's code; report, don't crash
                self._target_error = f"the conformance target failed to start: {type(exc).__name__}: {exc}"
            if self._target is not None:
                self._learn_secrets(self._target)
        return self._target

    def _learn_secrets(self, target: ConformanceTarget) -> None:
        try:
            paths = secret_paths(load_manifest(self.plugin).credentials_schema())
        except Exception:  # noqa: BLE001 - the schema checks report it; scan for nothing rather than crash
            return
        self.redactor.register(*secret_values(target.good_config, paths), *secret_values(target.bad_config, paths))

    def target(self) -> ConformanceTarget:
        """The started target; ``MissingPiece`` when the connector registers none."""
        target = self._start()
        if target is not None:
            return target
        if self._target_error or self._factory_error:
            raise CheckFailed(self._target_error or self._factory_error or "")
        raise MissingPiece(f"connector {self.name!r} registers no conformance target, so its hooks cannot be "
                           f"exercised: add one in the 'dsr.conformance' entry-point group under {self.name!r} "
                           "(see docs/connector-authors.md)")

    def close(self) -> None:
        """Stop the target (and whatever it started)."""
        self._stack.close()

    # -- limits --------------------------------------------------------------------------------------------

    def call_limit(self) -> float:
        limit = self.manifest.call_seconds or DEFAULT_CALL_SECONDS
        tighter = self.target().call_seconds
        return min(limit, tighter) if tighter else limit

    def min_interval(self) -> float:
        declared = self.target().min_check_interval
        if declared is None:
            declared = self.manifest.min_check_interval_seconds
        return DEFAULT_MIN_CHECK_INTERVAL if declared is None else declared

    def budget(self, hook: str) -> float:
        capability = self.manifest.capability(hook)
        default = 60.0 if capability is not None and capability.asynchronous else 20.0
        return float(self.target().budgets.get(hook, default))

    # -- running a runtime check ---------------------------------------------------------------------------

    def run_runtime(self, check: Callable[[Runtime, str | None], None], param: str | None) -> None:
        """Run one runtime check with fresh directories, the egress guard, and output captured and scrubbed."""
        target = self.target()
        manifest = self.manifest
        workspace = Workspace()
        guard = egress.EgressGuard.allowing((*manifest.egress_hosts, *target.allowed_hosts),
                                            label=f"connector {self.name!r}")
        outcome: Exception | None = None
        try:
            with captured() as output, workspace.entered(), guard.active():
                try:
                    check(Runtime(self, target, workspace), param)
                except (CheckFailed, CheckSkipped, MissingPiece) as exc:
                    outcome = exc
            self._pass_on(output.stdout, output.stderr)
            problems = []
            if guard.violations:
                problems.append(f"the connector {'; '.join(dict.fromkeys(guard.violations))} "
                                "(only the manifest's egress_hosts and the target may be contacted; no process "
                                "may be started)")
            strays = workspace.strays()
            if strays:
                problems.append("wrote outside the request's output directory: " + ", ".join(strays[:5]))
            if problems:
                earlier = f"\n(the check also found: {outcome})" if isinstance(outcome, CheckFailed) else ""
                raise CheckFailed("; ".join(problems) + earlier)
            if outcome is not None:
                raise outcome
        finally:
            workspace.remove()

    def clean(self, text: str) -> str:
        """``text`` fit to report: configured secrets (in any form) scrubbed and email addresses masked."""
        return mask_email(self.redactor.scrub(text))

    def _pass_on(self, stdout: str, stderr: str) -> None:
        """Hand captured output on to whoever was listening, with secrets and emails hidden."""
        if stdout:
            sys.stdout.write(self.clean(stdout))
        if stderr:
            sys.stderr.write(self.clean(stderr))


class Runtime:
    """What a runtime check works with: the target, handles loaded as a host loads them, and hook calls that
    are each checked on the way (time, polling, results, files)."""

    def __init__(self, cut: ConnectorUnderTest, target: ConformanceTarget, workspace: Workspace) -> None:
        self.cut = cut
        self.target = target
        self.workspace = workspace

    # -- the target's own code runs trusted: no guard, the usual directories --------------------------------

    @contextlib.contextmanager
    def trusted(self) -> Iterator[None]:
        with egress.paused(), self.workspace.left():
            yield

    def prepare(self) -> None:
        """Let the target (re)create the existing subject."""
        if self.target.prepare is not None:
            with self.trusted():
                self.target.prepare()

    def oracle(self, purpose: str) -> Oracle:
        """The target's oracle; ``MissingPiece`` saying what to add when there is none."""
        if self.target.oracle is None:
            raise MissingPiece(f"the conformance target has no oracle, so the harness cannot check that {purpose}: "
                               "add ConformanceTarget(oracle=...) with exists(), opted_out(), held_data() and "
                               "writes() answered by the service itself (see docs/connector-authors.md)")
        return self.target.oracle

    def ask(self, question: Callable[..., T], *args: Any) -> T:
        """Ask the oracle (trusted code) a question."""
        with self.trusted():
            return question(*args)

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

    def request(self, kind: str, subject: Mapping[str, str]) -> DsrRequest:
        """A fresh request (new id, new output directory) for ``subject``."""
        return DsrRequest(f"conformance-{uuid.uuid4().hex[:12]}", kind, self.target.regulation,  # type: ignore[arg-type]
                          dict(subject), datetime.now(UTC), str(self.workspace.output_dir()))

    def _carries_secret(self, result: Result | ConnectionResult) -> bool:
        """True when the facade withheld ``result`` for a secret, or a secret (in any form) is in it still."""
        return WITHHELD_MESSAGE in result.message or leaked(json.dumps(result.to_dict()), self.cut.redactor)

    def connection(self, handle: ConnectorHandle) -> ConnectionResult:
        """``test_connection`` through the facade, under the per-call limit."""
        try:
            result, _ = call_with_limit(handle.test_connection, self.cut.call_limit(), "test_connection")
        except Overran as exc:
            raise CheckFailed(f"test_connection {exc}") from None
        if self._carries_secret(result):
            raise CheckFailed("a test_connection result carries a configured secret (or 8 or more characters of one)")
        return result

    def run(self, handle: ConnectorHandle, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Driven:
        """Drive ``request`` to a final result as a host does, failing the check on any contract breach."""
        hook = HOOK_FOR_TYPE[request.type]
        limit, max_calls = self.cut.call_limit(), self.target.max_calls

        def call(current: Mapping[str, Any] | None) -> Result:
            started = datetime.now(UTC)
            try:
                result, _ = call_with_limit(lambda: handle.handle(request, current), limit, hook)
            except Overran as exc:
                raise CheckFailed(f"{hook} {exc} (the manifest's timing.call_seconds, or the harness default): "
                                  "a hook must return within it, pending if the work takes longer") from None
            self._judge(hook, result, started)
            return result

        budget = self.cut.budget(hook)
        try:
            driven = drive(call, state=state, budget=budget, max_calls=max_calls, tick=0.05)
        except StillPending as exc:
            if exc.calls >= max_calls:
                raise CheckFailed(f"{hook} needed more than {max_calls} calls for one request (a busy loop; "
                                  f"ConformanceTarget.max_calls): {exc.result.message}") from None
            raise CheckFailed(f"{hook} did not reach a final result within its {budget:g}s budget "
                              f"(ConformanceTarget.budgets): {exc.result.message}") from None
        final = driven.result
        if request.output_dir is not None:
            problems = unlisted_files_with_secrets(request.output_dir, final.files, self.cut.redactor)
            if final.status == "completed":
                problems = listed_file_problems(final.files, request.output_dir, self.cut.redactor) + problems
            if problems:
                raise CheckFailed(f"{hook} " + "; ".join(problems))
        return driven

    def _judge(self, hook: str, result: Result, started: datetime) -> None:
        """The rules every result obeys, whatever the check: no secret, plain-JSON state, a sane next check."""
        if self._carries_secret(result):
            raise CheckFailed(f"a {hook} result carries a configured secret (or 8 or more characters of one, or an "
                              "encoded form) in its message, summary, state or audit trail")
        if result.state is not None:
            try:
                plain = json.loads(json.dumps(result.state)) == dict(result.state)
            except (TypeError, ValueError):
                plain = False
            if not plain:
                raise CheckFailed(f"{hook} returned a state that does not survive a JSON round trip; a host stores "
                                  "state as JSON")
        if result.status == "pending" and result.next_check_at is not None:
            gap = (result.next_check_at - started).total_seconds()
            minimum = self.cut.min_interval()
            if gap < minimum - _CLOCK_SLACK:
                raise CheckFailed(f"{hook} returned pending with next_check_at {gap:.3f}s after the call began, sooner "
                                  f"than the declared minimum of {minimum:g}s: a host honouring it would poll in a "
                                  "busy loop")

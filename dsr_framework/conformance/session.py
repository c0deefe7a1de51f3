"""One connector under test: imported under the harness's guards, its manifest, its target (checked when it
starts), its handles as a host loads them, and the limits the checks hold it to.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from importlib import metadata
from typing import Any

from dsr_framework.conformance import egress, hoststate, threads
from dsr_framework.conformance.configwatch import Declared, ObservedConfig, declared_keys
from dsr_framework.conformance.filewatch import FileWatch
from dsr_framework.conformance.outcomes import CheckFailed, MissingPiece
from dsr_framework.conformance.people import Seeded
from dsr_framework.conformance.personal import PersonalData
from dsr_framework.conformance.target import ENTRY_POINT_GROUP as TARGET_GROUP
from dsr_framework.conformance.target import ConformanceTarget, TargetFactory, target_problems
from dsr_framework.host import ENTRY_POINT_GROUP, ConnectorHandle, entry_points, load_host
from dsr_framework.manifest import Manifest, load_manifest, plugin_package
from dsr_framework.redact import Redactor, mask_email
from dsr_framework.validation import SchemaViolation, secret_paths, secret_values

__all__ = ["DEFAULT_CALL_SECONDS", "DEFAULT_MIN_CHECK_INTERVAL", "ConnectorUnderTest"]

DEFAULT_CALL_SECONDS = 30.0  #: the per-call limit when the manifest declares none
DEFAULT_MIN_CHECK_INTERVAL = 1.0  #: the soonest next check when neither the target nor the manifest says


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
        self.undeclared: list[str] = []  #: settings the hooks looked up that the schema does not declare
        self.seeded = Seeded()  #: what the oracle says about everyone right after prepare()
        self._declared: Declared | None = None
        self._reported_reads = 0
        self._called: set[int] = set()
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
        """Import the target and the connector from their entry points with the harness's guards on."""
        if self._loaded:
            return
        self._loaded = True
        target_ep = entry_points(TARGET_GROUP).get(self.name) if self._factory is None else None
        plugin_ep = entry_points().get(self.name) if self._plugin is None else None
        watched = [ep.module for ep in (target_ep, plugin_ep) if ep is not None]
        self.import_observed = bool(watched) and not any(module in sys.modules for module in watched)
        with self._import_watched():
            if target_ep is not None:
                self._factory, self._factory_error = _imported(target_ep, "its conformance target failed to import")
            if plugin_ep is not None:
                self._plugin, self._plugin_error = _imported(plugin_ep, f"connector {self.name!r} failed to import")

    @contextlib.contextmanager
    def _import_watched(self) -> Iterator[None]:
        """Record what code run at import time does: connections, processes, files, the host process, threads."""
        label = f"connector {self.name!r}, while being imported,"
        threads.install()  # the harness's own wrapper goes in first: it is not the connector's change
        guard, watch = egress.EgressGuard.allowing((), label=label), FileWatch(label=label)
        before, running = hoststate.snapshot(), threads.alive()
        with guard.active(), watch.active(), threads.as_connector():
            yield
        self.import_violations = [*guard.violations, *watch.problems()]
        self.import_violations += [f"changed the host process's {what}" for what in before.changes()]
        started = sorted(t.name for t in threads.alive() - running)
        if started:
            self.import_violations.append(f"started thread(s) that still run: {', '.join(started[:3])}")
        before.restore()

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
    def package(self) -> str:
        """The top-level package of the connector (its loggers are named after it)."""
        return plugin_package(self.plugin).split(".")[0]

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
        """The connector loaded as a host loads it, with the target's ``good`` or ``bad`` configuration; its
        hooks get the settings as an :class:`ObservedConfig`, which records undeclared keys they look up."""
        if which not in self._handles:
            target = self.target()
            config = target.good_config if which == "good" else target.bad_config
            host = load_host({"connectors": {self.name: {"enabled": True, "config": dict(config)}}},
                             plugins={self.name: self.plugin}, use_entry_points=False)
            if host.problems:
                raise CheckFailed(f"the host refused to load the connector with the target's {which} config: "
                                  + "; ".join(p.message for p in host.problems))
            handle = host.connector(self.name)
            declared = self.declared_settings()
            handle.observe_config(lambda settings: ObservedConfig(settings, declared, undeclared=self.undeclared))
            self._handles[which] = handle
        return self._handles[which]

    def declared_settings(self) -> Declared:
        """The settings the credentials schema declares, place by place (read once)."""
        if self._declared is None:
            self._declared = declared_keys(self.manifest.credentials_schema())
        return self._declared

    def first_call(self, handle: ConnectorHandle) -> bool:
        """True the first time it is asked about ``handle``: the first call with its configuration."""
        first = id(handle) not in self._called
        self._called.add(id(handle))
        return first

    def undeclared_reads(self) -> list[str]:
        """Undeclared settings looked up since the last time this was asked."""
        new = self.undeclared[self._reported_reads:]
        self._reported_reads = len(self.undeclared)
        return new

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
                problems = target_problems(self._target)
                if problems:
                    self._target_error = "the conformance target is refused: " + "; ".join(problems)
        return self._target

    def _learn_secrets(self, target: ConformanceTarget) -> None:
        try:
            paths = secret_paths(load_manifest(self.plugin).credentials_schema())
        except Exception:  # noqa: BLE001 - the schema checks report it; scan for nothing rather than crash
            return
        self.redactor.register(*secret_values(target.good_config, paths), *secret_values(target.bad_config, paths))

    def target(self) -> ConformanceTarget:
        """The started target; ``MissingPiece`` when the connector registers none, ``CheckFailed`` when it is
        unusable (it failed to start, or lacks what every check needs)."""
        target = self._start()
        if self._target_error or self._factory_error:
            raise CheckFailed(self._target_error or self._factory_error or "")
        if target is not None:
            return target
        raise MissingPiece(f"connector {self.name!r} registers no conformance target, so its hooks cannot be "
                           f"exercised: add one in the 'dsr.conformance' entry-point group under {self.name!r} "
                           "(see docs/connector-authors.md)")

    def people(self) -> PersonalData:
        """The personal data of everyone the target names, to be found nowhere it does not belong."""
        target = self.target()
        subjects = [target.existing_subject, target.missing_subject, *target.bystanders]
        return PersonalData.of(subjects, target.personal_data)

    def close(self) -> None:
        """Stop the target (and whatever it started)."""
        self._stack.close()

    # -- limits --------------------------------------------------------------------------------------------

    def call_limit(self) -> float:
        limit = self.manifest.call_seconds or DEFAULT_CALL_SECONDS
        tighter = self.target().call_seconds
        return min(limit, tighter) if tighter else limit

    def call_limit_source(self) -> str:
        """Where the per-call limit comes from, as a message names it."""
        tighter = self.target().call_seconds
        if tighter and tighter < (self.manifest.call_seconds or DEFAULT_CALL_SECONDS):
            return "ConformanceTarget.call_seconds"
        if self.manifest.call_seconds:
            return "the manifest's timing.call_seconds"
        return f"the harness default of {DEFAULT_CALL_SECONDS:g}s; declare timing.call_seconds in the manifest"

    def min_interval(self) -> tuple[float, str]:
        """The soonest a pending result may ask to be called again, and the setting that says so."""
        declared = self.target().min_check_interval
        if declared is not None:
            return declared, "ConformanceTarget.min_check_interval"
        if self.manifest.min_check_interval_seconds is not None:
            return self.manifest.min_check_interval_seconds, "the manifest's timing.min_check_interval_seconds"
        return DEFAULT_MIN_CHECK_INTERVAL, "the harness default; declare timing.min_check_interval_seconds"

    def budget(self, hook: str) -> float:
        capability = self.manifest.capability(hook)
        default = 60.0 if capability is not None and capability.asynchronous else 20.0
        return float(self.target().budgets.get(hook, default))

    def clean(self, text: str) -> str:
        """``text`` fit to report: configured secrets (in any form) scrubbed and email addresses masked."""
        return mask_email(self.redactor.scrub(text))

    def pass_on(self, stdout: str, stderr: str) -> None:
        """Hand captured output on to whoever was listening, with secrets and emails hidden."""
        if stdout:
            sys.stdout.write(self.clean(stdout))
        if stderr:
            sys.stderr.write(self.clean(stderr))

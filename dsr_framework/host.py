"""Discover, enable, validate and call connectors: the host side of the contract.

:func:`load_host` is the one factory. It adds the hook specs, finds connectors in the ``dsr.connectors``
entry-point group (plus any passed in directly), imports only the enabled ones, checks each one's
manifest, hooks and configuration, and skips any that fail with a :class:`LoadProblem` — the others keep
working. :class:`ConnectorHandle` is the typed facade the rest of a host uses; it calls one connector at a
time, validates what comes back, and never lets an exception from a connector reach the host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pluggy

from dsr_framework import hookspecs
from dsr_framework.config import ConnectorConfig, HostConfig, MissingEnvironment, expand_environment
from dsr_framework.manifest import Manifest, contract_problems, load_manifest
from dsr_framework.models import HOOK_FOR_TYPE, CheckOutcome, ConnectionResult, DsrRequest, Result
from dsr_framework.redact import Redactor
from dsr_framework.text import joined, lines, say, shown
from dsr_framework.validation import (
    SchemaViolation,
    schema_validator,
    secret_paths,
    secret_values,
    validate,
)

__all__ = ["ENTRY_POINT_GROUP", "WITHHELD_MESSAGE", "ConnectorHandle", "Host", "LoadProblem", "entry_points",
           "load_host", "plugin_manager", "register_checked"]

ENTRY_POINT_GROUP = "dsr.connectors"
log = logging.getLogger("dsr_framework.host")

Stage = Literal["import", "manifest", "hooks", "environment", "config"]

#: The message of a result the facade withheld; tools (the conformance harness) look for it.
WITHHELD_MESSAGE = "the connector's result was withheld because it contained a configured secret"


@dataclass(frozen=True)
class LoadProblem:
    """Why a connector was skipped at load time. The message never contains a secret."""

    connector: str
    stage: Stage
    message: str  #: fit for people (:func:`~dsr_framework.text.shown`: one line unless built line by line)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", shown(self.message))

    def __str__(self) -> str:
        return joined(say("connector {} skipped ({}): ", repr(self.connector), self.stage), self.message)


class ConnectorHandle:
    """Typed access to one loaded connector's hooks.

    Every method returns a model; none raises because of what the connector did. An exception escaping
    the connector, a result that fails the result schema, or a result carrying a configured secret all
    become a ``failed`` result of class ``internal``.
    """

    def __init__(
        self, name: str, plugin: object, manifest: Manifest, config: Mapping[str, Any],
        redactor: Redactor, pm: pluggy.PluginManager,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.manifest = manifest
        self._config = config
        self._redactor = redactor
        self._pm = pm

    def __repr__(self) -> str:
        return f"ConnectorHandle({self.name!r}, version={self.manifest.version!r})"

    @property
    def config(self) -> Mapping[str, Any]:
        """The settings every hook of this connector receives (validated, ``${...}`` expanded)."""
        return self._config

    def observe_config(self, wrap: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> None:
        """Hand the hooks ``wrap(settings)`` from now on, instead of the settings themselves.

        For tools that watch what a connector does with its settings (the conformance harness records which
        keys it reads); ``wrap`` must return a mapping equal to the one it was given.
        """
        wrapped = wrap(self._config)
        if dict(wrapped) != dict(self._config):
            raise ValueError("observe_config: the wrapped settings differ from the settings")
        self._config = wrapped

    @property
    def config_id(self) -> str:
        """A short hash that tells this connector's configuration apart from any other (workers of one fleet
        compare it); it holds nothing that can be read back."""
        canonical = json.dumps(self._config, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def redactor(self) -> Redactor:
        """Hides this connector's configured secrets (and masks emails) in any text."""
        return self._redactor

    def implements(self, hook: str) -> bool:
        return hook in self.manifest.hooks

    def hookimpl(self, hook: str) -> pluggy.HookImpl:
        """This connector's implementation of ``hook`` (for tools such as the conformance harness)."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        impls = [i for i in caller.get_hookimpls() if i.plugin is self.plugin]
        if not impls:
            raise LookupError(f"connector {self.name!r} does not implement {hook}")
        return impls[0]

    def _call(self, hook: str, **kwargs: Any) -> Any:
        others = [p for p in self._pm.get_plugins() if p is not self.plugin]
        caller = self._pm.subset_hook_caller(hook, remove_plugins=others)
        return caller(config=self._config, **kwargs)

    def _crash_message(self, hook: str, exc: BaseException) -> str:
        """The message of the failed result an exception escaping ``hook`` becomes (logged with its traceback)."""
        detail = self._redactor(f"{type(exc).__name__}: {exc}")
        log.error(
            "connector %r raised inside %s: %s\n%s", self.name, hook, detail,
            self._redactor("".join(traceback.format_exception(exc))),
        )
        return f"the connector failed unexpectedly in {hook} ({detail})"

    def _document(self, hook: str, model: type[Result | ConnectionResult], what: str,
                  **kwargs: Any) -> Mapping[str, Any] | str:
        """Call ``hook``: the JSON object it returned, or the message of the failure it becomes instead.

        An exception, something that is not a JSON object (nor a ``model``), or a result carrying a configured
        secret all become a message; the caller turns it into its own kind of failed result.
        """
        try:
            raw = self._call(hook, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the host must survive any connector defect
            return self._crash_message(hook, exc)
        document = raw.to_dict() if isinstance(raw, model) else raw
        if not isinstance(document, Mapping):
            return f"connector {self.name!r} returned no {what}"
        if self._redactor.leaks(json.dumps(document, default=str)):
            log.error("connector %r returned a configured secret from %s; result withheld", self.name, hook)
            return WITHHELD_MESSAGE
        return document

    def test_connection(self) -> ConnectionResult:
        """Run the connector's connection checks."""

        def failure(message: str) -> ConnectionResult:
            return ConnectionResult((CheckOutcome("connector", False, message, error_class="internal"),), message)

        if not self.implements("test_connection"):
            return failure(f"connector {self.name!r} does not implement test_connection")
        document = self._document("test_connection", ConnectionResult, "connection-test result")
        if isinstance(document, str):
            return failure(document)
        try:
            return ConnectionResult.from_dict(document)
        except (SchemaViolation, ValueError, KeyError) as exc:
            return failure(f"the connector returned an invalid result: {self._redactor(str(exc))}")

    def handle(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        """Dispatch ``request`` to the hook for its type."""
        return self._handle(HOOK_FOR_TYPE[request.type], request, state)

    def handle_access(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_access", request, state)

    def handle_deletion(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_deletion", request, state)

    def handle_opt_out(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        return self._handle("handle_opt_out", request, state)

    def _refusal(self, hook: str, request: DsrRequest) -> Result | None:
        """The failed result of a request that must not reach ``hook`` at all (None when it may)."""
        if HOOK_FOR_TYPE[request.type] != hook:
            return Result.failed(request, "configuration", f"a {request.type} request cannot go to {hook}")
        if not self.implements(hook):
            return Result.failed(
                request, "configuration", f"connector {self.name!r} does not support {request.type} requests"
            )
        if request.regulation not in self.manifest.regulations_for(hook):
            return Result.failed(request, "configuration", f"connector {self.name!r} does not carry out "
                                 f"{request.regulation} {request.type} requests (its manifest's regulations)")
        return None

    @staticmethod
    def _passable_state(hook: str, request: DsrRequest, state: Any) -> dict[str, Any] | None:
        if state is None or isinstance(state, Mapping):
            return dict(state) if state is not None else None
        # The contract says a JSON object; anything else cannot be what the connector returned. Passing
        # none lets the connector resume from its remote system's own record.
        log.warning("the host passed a %s as the state of request %r to %s; ignoring it",
                    type(state).__name__, request.request_id, hook)
        return None

    def cancel(self, request: DsrRequest, state: Mapping[str, Any] | None = None) -> Result:
        """Withdraw ``request`` through ``handle_cancel`` (an optional hook: a connector whose manifest does not
        declare it gets a ``failed`` result of class ``configuration``, and nothing is called). ``state`` is the
        request's latest pending state. See :func:`dsr_framework.hookspecs.handle_cancel` for what comes back."""
        if not self.implements("handle_cancel"):
            return Result.failed(request, "configuration", f"connector {self.name!r} cannot cancel requests (its "
                                 "manifest does not declare handle_cancel)")
        result = self._checked("handle_cancel", request, state)
        if result.status == "pending":
            return Result.failed(request, "internal", "the connector returned pending from handle_cancel; a cancel "
                                 "is one call, final either way")
        return result

    def _handle(self, hook: str, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        refused = self._refusal(hook, request)
        if refused is not None:
            return refused
        return self._checked(hook, request, state)

    def _checked(self, hook: str, request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
        """Call ``hook`` for ``request``: its result once validated, or the failed result it becomes."""
        document = self._document(hook, Result, f"result from {hook}", request=request,
                                  state=self._passable_state(hook, request, state))
        if isinstance(document, str):
            return Result.failed(request, "internal", document)
        try:
            result = Result.from_dict(document)  # validates against the result schema
        except (SchemaViolation, ValueError, KeyError) as exc:
            return Result.failed(request, "internal", f"the connector returned an invalid result: {exc}")
        if result.request_id != request.request_id or result.request_type != request.type:
            return Result.failed(request, "internal", "the connector returned a result for a different request")
        return result


class Host:
    """The loaded connectors, and the problems with those that could not be loaded."""

    def __init__(
        self, pm: pluggy.PluginManager, handles: Mapping[str, ConnectorHandle],
        problems: list[LoadProblem], discovered: Mapping[str, bool],
    ) -> None:
        self.plugin_manager = pm
        self._handles = dict(handles)
        self.problems = list(problems)
        self.discovered = dict(discovered)

    @property
    def connectors(self) -> list[str]:
        """Names of the connectors that loaded and are enabled."""
        return sorted(self._handles)

    def connector(self, name: str) -> ConnectorHandle:
        """The facade for one enabled, loaded connector; ``KeyError`` with the reason otherwise."""
        if name in self._handles:
            return self._handles[name]
        reasons = [str(p) for p in self.problems if p.connector == name]
        if reasons:
            raise KeyError("; ".join(reasons))
        if name in self.discovered and not self.discovered[name]:
            raise KeyError(f"connector {name!r} is installed but not enabled in the host config")
        raise KeyError(f"no connector named {name!r} (installed: {', '.join(sorted(self.discovered)) or 'none'})")


def entry_points(group: str = ENTRY_POINT_GROUP) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name; the first of a repeated name wins. Nothing is imported."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def _read_manifest(name: str, plugin: object) -> Manifest | LoadProblem:
    try:
        manifest = load_manifest(plugin)
    except SchemaViolation as exc:
        return LoadProblem(name, "manifest", str(exc))
    except Exception as exc:  # noqa: BLE001 - any unreadable manifest skips only this connector
        return LoadProblem(name, "manifest", f"manifest.yaml could not be read: {type(exc).__name__}: {exc}")
    if manifest.id != name:
        return LoadProblem(name, "manifest", f"manifest id {manifest.id!r} does not match the entry-point name")
    return manifest


def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager holding the DSR hook specs, and no connector yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def register_checked(
    pm: pluggy.PluginManager, plugin: object, manifest: Manifest, name: str | None = None,
) -> list[str]:
    """Register ``plugin``, then list every way its hooks and ``manifest`` disagree (:func:`contract_problems`).

    A plugin with problems is unregistered again. A hook whose signature does not match its spec raises what
    ``pm.register`` raises (``pluggy.PluginValidationError`` or ``ValueError``).
    """
    pm.register(plugin, name=name)
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or []}
    problems = contract_problems(manifest, implemented, hookspecs.HOOK_NAMES)
    if problems:
        pm.unregister(plugin)
    return problems


def _register(name: str, plugin: object, manifest: Manifest, pm: pluggy.PluginManager) -> LoadProblem | None:
    """Register ``plugin`` if its hooks match their specs and its manifest; the problem otherwise."""
    try:
        problems = register_checked(pm, plugin, manifest, name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        return LoadProblem(name, "hooks", str(exc))
    return LoadProblem(name, "hooks", "; ".join(problems)) if problems else None


def _handle_for(
    name: str, plugin: object, manifest: Manifest, entry: ConnectorConfig, pm: pluggy.PluginManager,
    environ: Mapping[str, str] | None,
) -> ConnectorHandle | LoadProblem:
    """The facade of a registered connector whose settings are complete and valid; the problem otherwise."""
    try:
        schema = manifest.credentials_schema()
    except Exception as exc:  # noqa: BLE001
        return LoadProblem(name, "manifest",
                           f"credentials schema {manifest.credentials_schema_path!r} is unusable: {exc}")
    try:
        settings = expand_environment(entry.settings, environ)
    except MissingEnvironment as exc:
        return LoadProblem(name, "environment", str(exc))
    redactor = Redactor(secret_values(settings, secret_paths(schema)))
    try:
        validate(schema_validator(schema), settings, f"configuration of connector {name!r}")
    except SchemaViolation as exc:
        return LoadProblem(name, "config", lines(*(redactor(line) for line in exc.shown.split("\n"))))
    return ConnectorHandle(name, plugin, manifest, settings, redactor, pm)


def _load_one(
    name: str, plugin: object, entry: ConnectorConfig, pm: pluggy.PluginManager,
    environ: Mapping[str, str] | None,
) -> ConnectorHandle | LoadProblem:
    manifest = _read_manifest(name, plugin)
    if isinstance(manifest, LoadProblem):
        return manifest
    problem = _register(name, plugin, manifest, pm)
    if problem is not None:
        return problem
    outcome = _handle_for(name, plugin, manifest, entry, pm, environ)
    if isinstance(outcome, LoadProblem):
        pm.unregister(plugin)
    return outcome


def _host_config(config: HostConfig | Mapping[str, Any] | str | Path | None) -> HostConfig:
    if isinstance(config, (str, Path)):
        return HostConfig.from_file(config)
    if isinstance(config, HostConfig):
        return config
    return HostConfig.from_dict(config)


def _import(name: str, direct: Mapping[str, object], found: Mapping[str, metadata.EntryPoint]) -> object:
    """The connector object: passed in directly, or imported from its entry point (a LoadProblem if that fails)."""
    if name in direct:
        return direct[name]
    try:
        return found[name].load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the host down
        return LoadProblem(name, "import", f"import failed: {type(exc).__name__}: {exc}")


def _load_enabled(
    entries: Mapping[str, ConnectorConfig], direct: Mapping[str, object], found: Mapping[str, metadata.EntryPoint],
    pm: pluggy.PluginManager, environ: Mapping[str, str] | None,
) -> tuple[dict[str, ConnectorHandle], list[LoadProblem]]:
    """Import and load each enabled connector (by name): the handles, and the problems of those skipped."""
    handles: dict[str, ConnectorHandle] = {}
    problems: list[LoadProblem] = []
    for name, entry in sorted(entries.items()):
        if not entry.enabled:
            log.debug("connector %r is installed but not enabled", name)
            continue
        plugin = _import(name, direct, found)
        outcome = plugin if isinstance(plugin, LoadProblem) else _load_one(name, plugin, entry, pm, environ)
        if isinstance(outcome, LoadProblem):
            problems.append(outcome)
        else:
            handles[name] = outcome
    return handles, problems


def load_host(
    config: HostConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    plugins: Mapping[str, object] | None = None,
    use_entry_points: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Host:
    """Build the plugin manager and load every enabled connector.

    Arguments:
        config: a :class:`HostConfig`, its dict form, or the path of a YAML file.
        plugins: connector objects (modules) to register directly, by name, besides entry points.
        use_entry_points: discover connectors in the ``dsr.connectors`` entry-point group.
        environ: where ``${NAME}`` references are looked up (default ``os.environ``).
    """
    host_config = _host_config(config)
    pm = plugin_manager()
    found = entry_points() if use_entry_points else {}
    direct = dict(plugins or {})
    entries = {name: host_config.connectors.get(name, ConnectorConfig()) for name in {*found, *direct}}
    handles, problems = _load_enabled(entries, direct, found, pm, environ)
    problems += [LoadProblem(name, "import", "enabled in the host config but not installed")
                 for name, entry in sorted(host_config.connectors.items()) if entry.enabled and name not in entries]
    pm.check_pending()  # every registered plugin passed the per-connector hook check above
    for problem in problems:
        log.warning("%s", problem)
    return Host(pm, handles, problems, {name: entry.enabled for name, entry in entries.items()})

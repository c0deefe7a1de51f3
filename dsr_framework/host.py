"""Discover, enable, validate and call connectors: the host side of the contract.

:func:`load_host` is the one factory. It adds the hook specs, finds connectors in the ``dsr.connectors``
entry-point group (plus any passed in directly), imports only the enabled ones, checks each one's
manifest, hooks and configuration, and skips any that fail with a :class:`LoadProblem` — the others keep
working. :class:`ConnectorHandle` (:mod:`dsr_framework.handle`, re-exported here) is the typed facade the rest of
a host uses; it calls one connector at a time, validates what comes back, and never lets an exception from a
connector reach the host.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pluggy

from dsr_framework import hookspecs
from dsr_framework.config import ConnectorConfig, HostConfig, MissingEnvironment, expand_environment
from dsr_framework.handle import WITHHELD_MESSAGE, ConnectorHandle
from dsr_framework.manifest import Manifest, contract_problems, load_manifest
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

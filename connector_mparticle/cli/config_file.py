"""Read the connector config file and the env file, and load the connector through the framework as a host does.

Everything here is local: a problem found here ends the command (exit 2) before anything is sent. Beyond
the framework's own validation it adds what a person at a terminal needs: the file, line and column of a
YAML error, "did you mean" for a misspelled setting, the ``--env-file`` hint for missing variables, and a
warning when a secret is written in the file instead of as a ``${NAME}`` reference.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector_mparticle.cli.exits import CliError
from connector_mparticle.cli.request_rules import REGULATIONS
from connector_mparticle.cli.state_file import state_file_key
from connector_mparticle.errors import ConfigurationError, MParticleError
from connector_mparticle.settings import Settings, parse_settings
from dsr_framework.config import (
    ConfigFileError,
    MissingEnvironment,
    expand_environment,
    read_config_file,
    read_env_file,
)
from dsr_framework.host import ConnectorHandle, load_host
from dsr_framework.manifest import load_manifest
from dsr_framework.text import for_people, joined, say
from dsr_framework.validation import schema_nodes, secret_paths, values_at

__all__ = ["LoadedConnector", "load_connector", "setup_logging"]

CONNECTOR = "mparticle"


@dataclass(frozen=True)
class LoadedConnector:
    """The loaded connector, the regulation new requests get when ``--regulation`` is not given, the key
    ``--state`` files are signed with (from the DSR credentials: :mod:`.state_file`), and the settings as the
    connector receives them (environment expanded: they hold secrets, never print them)."""

    handle: ConnectorHandle
    default_regulation: str
    state_key: bytes = field(repr=False)
    config: Mapping[str, Any] = field(repr=False)
    settings: Settings = field(repr=False)


class _ForPeople(logging.Formatter):
    """Log lines for a terminal: a record's message is one line and shows every control character as an
    escape (a logged server message can neither drive the terminal nor forge a line); tracebacks keep their
    own lines, each made safe the same way."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = for_people(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return "\n".join(for_people(line) for line in super().formatException(ei).split("\n"))


def setup_logging(verbose: bool) -> None:
    """Logs go to stderr only with ``--verbose``: the command prints every problem itself, once."""
    root = logging.getLogger()
    if verbose:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(_ForPeople("%(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.INFO)
    else:
        handler = logging.NullHandler()  # keeps logging's last-resort handler from printing warnings
    root.addHandler(handler)


def _schema() -> dict[str, Any]:
    return load_manifest(importlib.import_module("connector_mparticle.plugin")).credentials_schema()


def _known_keys(schema: Mapping[str, Any]) -> dict[tuple[str, ...], tuple[set[str], bool]]:
    """Per property path: the keys the schema names there, and whether it allows no others.

    :func:`schema_nodes` follows ``$ref`` (through referencing) and ``oneOf``/``anyOf``/``allOf``, so every
    auth branch's keys count.
    """
    known: dict[tuple[str, ...], tuple[set[str], bool]] = {}
    for path, chain in schema_nodes(schema):
        keys, closed = known.get(path, (set(), False))
        for node in chain:
            keys |= set(node.get("properties") or {})
            closed = closed or node.get("additionalProperties") is False
        known[path] = (keys, closed)
    return known


def unknown_key_hints(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """``$.dsr: unknown setting; did you mean 'polling'?`` for each setting the schema does not know, where a close
    name exists. The hint names the place and the known setting, never the unknown key itself: a key can be a
    value typed in the wrong place (``{type: basic, key: k, s3cr3t}`` makes the secret a key)."""
    known = _known_keys(schema)
    hints: list[str] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping):
            return
        keys, closed = known.get(path, (set(), False))
        for key, value in node.items():
            if key in keys:
                walk(value, (*path, key))
            elif closed:
                close = difflib.get_close_matches(str(key), sorted(keys), n=1, cutoff=0.6)
                if close:
                    where = "$" + "".join(f".{part}" for part in path)
                    hints.append(f"{where}: unknown setting; did you mean '{close[0]}'?")

    walk(config, ())
    return hints


def literal_secrets(config: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    """JSON paths of secrets written in the file as values rather than ``${NAME}`` references."""

    for secret in sorted(set(secret_paths(schema))):
        for where, value in values_at(config, secret):
            if isinstance(value, str) and value and "${" not in value:
                yield where


def _env_name(path: str) -> str:
    return "MP_" + "_".join(part.upper() for part in path.removeprefix("$.").replace("[", ".").replace("]", "")
                            .split(".") if part and part != "auth")


def read_environment(env_file: Path | None) -> dict[str, str]:
    """The process environment, with ``--env-file``'s values on top (the file given on purpose wins)."""
    environ = dict(os.environ)
    if env_file is not None:
        try:
            environ.update(read_env_file(env_file))
        except ConfigFileError as exc:
            raise CliError(str(exc), ["each line is KEY=VALUE (quotes, # comments and 'export' are allowed)"],
                           kind="configuration") from None
    return environ


def load_connector(config_path: Path, env_file: Path | None, warn: Callable[[str], None]) -> LoadedConnector:
    """Validate everything about the configuration locally and load the connector; :class:`CliError` if not.

    The connector is loaded with ``regulation: from_request`` so that the regulation each request carries
    (``--regulation``, else the config's ``regulation``) is the one sent to mParticle, stored and shown.
    """
    try:
        raw = read_config_file(config_path)
    except ConfigFileError as exc:
        raise CliError(str(exc), kind="configuration") from None
    if not isinstance(raw, Mapping):
        raise CliError(f"{config_path} must hold a mapping of connector settings (pod:, dsr:, inputs:, ...)",
                       kind="configuration")
    schema = _schema()
    for path in literal_secrets(raw, schema):
        warn(f"{config_path} holds a secret as plain text at {path}; it works, but keep secrets out of files: "
             f'write "${{{_env_name(path)}}}" there and set {_env_name(path)} in the environment or an --env-file')
    configured = raw.get("regulation", "gdpr")
    settings = dict(raw)
    # ``from_request``: each request's own regulation; an invalid value is left for validation to report
    if configured in (*REGULATIONS, "from_request"):
        settings["regulation"] = "from_request"
    environ = read_environment(env_file)
    host = load_host({"connectors": {CONNECTOR: {"enabled": True, "config": settings}}}, environ=environ)
    for problem in host.problems:
        if problem.stage == "environment":
            hint = (f"add them to {env_file} (KEY=VALUE lines) or set them in the environment" if env_file else
                    "set them in the environment, or write KEY=VALUE lines in a file and pass --env-file FILE")
            raise CliError(joined(say("{}: ", config_path), problem.message), [hint], kind="configuration")
        if problem.stage == "config":
            raise CliError(joined(say("{}: ", config_path), problem.message), unknown_key_hints(raw, schema),
                           kind="configuration")
        raise CliError(problem.__str__(), kind="configuration")
    default = configured if configured in REGULATIONS else "gdpr"
    handle = host.connector(CONNECTOR)
    expanded, parsed = _typed_settings(settings, environ, config_path, handle.redactor)
    return LoadedConnector(handle, default, state_file_key(parsed.dsr_auth.secrets()), expanded, parsed)


def _typed_settings(settings: Mapping[str, Any], environ: Mapping[str, str], config_path: Path,
                    redactor: Callable[[str], str]) -> tuple[Mapping[str, Any], Settings]:
    """The settings as the connector receives them (environment expanded) and typed. What the schema alone
    cannot see (a trust store file that is missing, intervals that contradict each other) is a :class:`CliError`
    here, before anything is sent."""
    try:
        expanded = expand_environment(settings, environ)
        return expanded, parse_settings(expanded)
    except ConfigurationError as exc:
        raise CliError(f"{config_path}: {redactor(exc.message)}", kind="configuration") from None
    except (MParticleError, MissingEnvironment, ValueError) as exc:  # the host accepted them: not expected
        raise CliError(f"{config_path}: the settings cannot be read ({type(exc).__name__})",
                       kind="configuration") from None

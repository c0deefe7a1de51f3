"""The host's configuration: which connectors are enabled, each with its settings.

.. code-block:: yaml

    connectors:
      mparticle:
        enabled: true
        config:
          dsr: {auth: {type: basic, key: "${MP_WORKSPACE_KEY}", secret: "${MP_WORKSPACE_SECRET}"}}

``${NAME}`` anywhere in a string is replaced by the environment variable ``NAME``; ``${NAME:-default}``
uses ``default`` when ``NAME`` is unset or empty (as in a shell or docker compose); write ``$${`` for a
literal ``${``. Any other ``${...}`` form (``${NAME:?message}``, ``${NAME:+x}``, a name with spaces, a
missing ``}``, a default that holds another reference such as ``${A:-${B}}``) is refused with the JSON path
where it appears, rather than passed on as text: a setting that silently keeps ``${...}`` would be sent to
the vendor as a credential. Nested references are refused rather than expanded: one level is what a
reader of the file can check at a glance, and a default that is itself a reference is better written as
two settings or set in the environment.

No error this module raises quotes a value from the file or the environment: YAML syntax errors keep
PyYAML's description and position but not the text it quotes (an alias, a tag or an escape can be the
start of a secret), except YAML's own punctuation and token names. A connector that is not listed,
or is listed with ``enabled: false``, is never imported or called.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsr_framework.files import FileError, read_trusted
from dsr_framework.text import for_people, joined, lines, say, shown

__all__ = [
    "ConfigFileError",
    "ConnectorConfig",
    "HostConfig",
    "MissingEnvironment",
    "expand_environment",
    "read_config_file",
    "read_env_file",
]

#: Read left to right: ``$${`` (an escaped literal ``${``), ``${NAME}`` or ``${NAME:-default}``, or any
#: other ``${`` (refused).
MAX_FILE_BYTES = 1 << 20  #: a configuration or env file larger than this is refused (1 MiB)
_TOKEN = re.compile(r"(?P<escaped>\$\$\{)|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$\{")


class MissingEnvironment(LookupError):
    """The settings' ``${...}`` references cannot all be resolved: variables not set, or unsupported forms.

    ``names`` lists the variables that are not set; ``unsupported`` the JSON paths holding a ``${...}``
    this module does not understand. Neither ever includes a value.
    """

    def __init__(self, names: list[str], unsupported: list[str] | None = None) -> None:
        self.names = names
        self.unsupported = unsupported or []
        parts = []
        if names:
            parts.append(f"environment variable{'s' * (len(names) > 1)} not set: {', '.join(names)}")
        if self.unsupported:
            parts.append(f"unsupported ${{...}} reference at {', '.join(self.unsupported)} "
                         "(write ${NAME}, ${NAME:-default} with a plain default, or $${ for a literal ${; "
                         "references cannot be nested)")
        super().__init__("; ".join(parts))


def expand_environment(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Return ``value`` with every ``${NAME}`` replaced from ``environ``; report all problems at once."""
    env = os.environ if environ is None else environ
    missing: set[str] = set()
    unsupported: list[str] = []

    def expand_text(text: str, path: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if match.group("escaped"):
                return "${"
            if name is None or (default is not None and "${" in default):  # not a reference, or a nested one
                if path not in unsupported:
                    unsupported.append(path)
                return ""
            if default is not None and not env.get(name):
                return default
            if name not in env:
                missing.add(name)
                return ""
            return env[name]

        return _TOKEN.sub(replace, text)

    def expand(node: Any, path: str) -> Any:
        if isinstance(node, str):
            return expand_text(node, path)
        if isinstance(node, Mapping):
            return {key: expand(item, f"{path}.{for_people(key)}") for key, item in node.items()}
        if isinstance(node, list):
            return [expand(item, f"{path}[{index}]") for index, item in enumerate(node)]
        return node

    result = expand(value, "$")
    if missing or unsupported:
        raise MissingEnvironment(sorted(missing), unsupported)
    return result


class ConfigFileError(ValueError):
    """A configuration file cannot be read or parsed; the message names the file, line and column."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.path, self.problem, self.line, self.column = str(path), problem, line, column
        where = say("{}:{}:{}", path, line, column) if line is not None else shown(path)
        super().__init__(joined(where, say(": {}", problem)))


def _read_text(path: str | Path, what: str) -> str:
    """The text of a file that gives orders, refused (:class:`ConfigFileError`) when another user owns it or
    could change it or a folder above it, as OpenSSH refuses its own (:func:`dsr_framework.files.read_trusted`)."""
    try:
        return read_trusted(path, MAX_FILE_BYTES, what).decode("utf-8")
    except FileError as exc:
        raise ConfigFileError(path, exc.message) from None
    except UnicodeDecodeError:
        raise ConfigFileError(path, "cannot be read (not UTF-8)") from None


def read_config_file(path: str | Path) -> Any:
    """Parse a YAML (or JSON) file; :class:`ConfigFileError` gives the line and column of a syntax error.

    Only the parser's description of the problem is reported, never the offending text, which may hold
    a secret.
    """
    text = _read_text(path, "configuration")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader, refusing aliases too
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = "; ".join(_unquoted(p) for p in (exc.context, exc.problem) if p) or "not valid YAML"
        if mark is None:
            raise ConfigFileError(path, problem) from None
        raise ConfigFileError(path, problem, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(path, f"not valid YAML ({type(exc).__name__})") from None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (``*name``). An alias shares a node, and every walk over the
    result (expansion, validation, hashing, hints) expands it: ten anchors of ten aliases each, 571 bytes,
    are 10^9 strings to walk (1.3 GB and minutes before anything could be refused). Anchors alone are harmless;
    a configuration needs no alias, so the first one is refused with its line and column."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "a YAML alias (*name), which configuration files do not accept (a few can expand a "
                "small file into gigabytes): write the value out", event.start_mark)
        return super().compose_node(parent, index)


#: A quoted part of a PyYAML message (it quotes with ``%r``), and the quoted texts that are YAML's own syntax:
#: a token name (``<block end>``), one punctuation character, or an escaped control character.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_SYNTAX = re.compile(r"<[a-z ]+>|[^\w\s]|\\(?:[tnr0]|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _unquoted(message: str) -> str:
    """PyYAML's ``message`` without the text it quotes from the file, unless that text is YAML syntax."""
    return _QUOTED.sub(lambda m: m.group() if _SYNTAX.fullmatch(m.group()[1:-1]) else "(text not shown)", message)


def read_env_file(path: str | Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, quotes, ``export``), parsed by python-dotenv, values taken literally.

    Values are not interpolated: a secret containing ``$`` arrives as written. A line that is not
    ``KEY=VALUE`` is a :class:`ConfigFileError` naming its line, never its text.
    """
    from dotenv.parser import parse_stream  # imported on use: hosts that never read env files skip it

    bindings = list(parse_stream(io.StringIO(_read_text(path, "env file"))))
    values: dict[str, str] = {}
    for binding in bindings:
        if binding.error or (binding.key is not None and binding.value is None):
            raise ConfigFileError(path, "expected KEY=VALUE", binding.original.line, 1)
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


@dataclass(frozen=True)
class ConnectorConfig:
    """One connector's entry in the host configuration (settings not yet expanded)."""

    enabled: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # settings may hold secrets
        return f"ConnectorConfig(enabled={self.enabled}, settings=<{len(self.settings)} keys>)"


def _connector_entry(name: str, entry: Any, problems: list[str]) -> ConnectorConfig | None:
    """One connector's entry, read as far as it can be; every problem with it is added to ``problems``."""
    if not isinstance(entry, Mapping):
        problems.append(f"$.connectors.{name} must be a mapping")
        return None
    extra = set(entry) - {"enabled", "config"}
    if extra:  # counted, never quoted: a key can be a value typed in the wrong place (a secret, say)
        problems.append(f"$.connectors.{name}: {len(extra)} unknown key(s); only 'enabled' and 'config' belong "
                        "here")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"$.connectors.{name}.enabled must be true or false")
    settings = entry.get("config") or {}
    if not isinstance(settings, Mapping):
        problems.append(f"$.connectors.{name}.config must be a mapping")
        settings = {}
    return ConnectorConfig(enabled is True, settings)


@dataclass(frozen=True)
class HostConfig:
    """Which connectors the host enables, and their settings."""

    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HostConfig:
        """Read the configuration's dict form; ``ValueError`` listing every problem with it."""
        data = data or {}
        unknown = sorted(set(data) - {"connectors"})
        if unknown:
            raise ValueError(f"host config: unknown top-level key(s): {', '.join(unknown)}")
        entries = data.get("connectors") or {}
        if not isinstance(entries, Mapping):
            raise ValueError("host config: 'connectors' must be a mapping of connector id to its entry")
        connectors: dict[str, ConnectorConfig] = {}
        problems: list[str] = []
        for name, entry in entries.items():
            connector = _connector_entry(name, entry or {}, problems)
            if connector is not None:
                connectors[str(name)] = connector
        if problems:
            raise ValueError(lines("host config is invalid:", *(say("  - {}", p) for p in problems)))
        return cls(connectors)

    @classmethod
    def from_file(cls, path: str | Path) -> HostConfig:
        """Read a YAML (or JSON) host configuration file (:class:`ConfigFileError` if it cannot be parsed)."""
        data = read_config_file(path)
        if data is not None and not isinstance(data, Mapping):
            raise ConfigFileError(path, "must hold a mapping (connectors: ...)")
        return cls.from_dict(data)

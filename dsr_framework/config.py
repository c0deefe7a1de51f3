"""The host's configuration: which connectors are enabled, each with its settings.

.. code-block:: yaml

    connectors:
      mparticle:
        enabled: true
        config:
          dsr: {auth: {type: basic, key: "${MP_WORKSPACE_KEY}", secret: "${MP_WORKSPACE_SECRET}"}}

``${NAME}`` anywhere in a string is replaced by the environment variable ``NAME`` (write ``$${`` for a
literal ``${``), so secrets stay out of the file. A connector that is not listed, or is listed with
``enabled: false``, is never imported or called.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConnectorConfig", "HostConfig", "MissingEnvironment", "expand_environment"]

_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingEnvironment(LookupError):
    """A ``${NAME}`` reference names environment variables that are not set."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"environment variable{'s' * (len(names) > 1)} not set: {', '.join(names)}")


def expand_environment(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Return ``value`` with every ``${NAME}`` replaced from ``environ``; report all missing names at once."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def expand(node: Any) -> Any:
        if isinstance(node, str):
            def replace(match: re.Match[str]) -> str:
                if match.group(1):  # "$${NAME}" is an escaped literal
                    return "${" + match.group(2) + "}"
                name = match.group(2)
                if name not in env:
                    missing.append(name)
                    return ""
                return env[name]

            return _REFERENCE.sub(replace, node)
        if isinstance(node, Mapping):
            return {key: expand(item) for key, item in node.items()}
        if isinstance(node, list):
            return [expand(item) for item in node]
        return node

    result = expand(value)
    if missing:
        raise MissingEnvironment(sorted(set(missing)))
    return result


@dataclass(frozen=True)
class ConnectorConfig:
    """One connector's entry in the host configuration (settings not yet expanded)."""

    enabled: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # settings may hold secrets
        return f"ConnectorConfig(enabled={self.enabled}, settings=<{len(self.settings)} keys>)"


@dataclass(frozen=True)
class HostConfig:
    """Which connectors the host enables, and their settings."""

    connectors: Mapping[str, ConnectorConfig] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HostConfig:
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
            entry = entry or {}
            if not isinstance(entry, Mapping):
                problems.append(f"$.connectors.{name} must be a mapping")
                continue
            extra = sorted(set(entry) - {"enabled", "config"})
            if extra:
                problems.append(f"$.connectors.{name}: unknown key(s) {', '.join(extra)}")
            enabled = entry.get("enabled", True)
            if not isinstance(enabled, bool):
                problems.append(f"$.connectors.{name}.enabled must be true or false")
            settings = entry.get("config") or {}
            if not isinstance(settings, Mapping):
                problems.append(f"$.connectors.{name}.config must be a mapping")
                settings = {}
            connectors[str(name)] = ConnectorConfig(enabled is True, settings)
        if problems:
            raise ValueError("host config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(connectors)

    @classmethod
    def from_file(cls, path: str | Path) -> HostConfig:
        """Read a YAML (or JSON) host configuration file."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(yaml.safe_load(handle))

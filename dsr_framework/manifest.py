"""Connector manifests: what a connector declares about itself, and where its files are."""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from types import ModuleType
from typing import Any, get_args

import yaml

from dsr_framework.models import Regulation
from dsr_framework.validation import framework_validator, load_schema, validate

__all__ = ["REGULATIONS", "Capability", "Manifest", "RateLimit", "RequestCost", "contract_problems", "load_manifest",
           "plugin_package"]

MANIFEST_FILE = "manifest.yaml"
#: Every regulation of the request contract: what a manifest that names none carries out.
REGULATIONS: tuple[str, ...] = get_args(Regulation)


@dataclass(frozen=True)
class Capability:
    hook: str
    identifier_categories: tuple[str, ...]
    mode: str
    description: str
    #: the regulations this hook carries out, when the capability narrows the manifest's (None: all of them)
    regulations: tuple[str, ...] | None = None
    #: every completed result says whether its outcome was checked (``Result.verification``)
    reports_verification: bool = False

    @property
    def asynchronous(self) -> bool:
        return self.mode == "asynchronous"


@dataclass(frozen=True)
class RateLimit:
    api: str
    limit: float
    per: str
    scope: str
    published: bool
    applies_to: str = ""
    source: str = ""

    @property
    def window_seconds(self) -> float:
        return {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}[self.per]

    @property
    def per_second(self) -> float:
        return self.limit / self.window_seconds


@dataclass(frozen=True)
class RequestCost:
    """What one request of a type costs in remote calls, by API (``request_costs`` in the manifest)."""

    calls: Mapping[str, float]
    calls_per_identifier: Mapping[str, float] = field(default_factory=dict)
    completion_seconds: float = 0.0  #: the longest the vendor takes to make one request final
    note: str = ""

    def for_request(self, identifiers: int) -> dict[str, float]:
        """The calls, by API, of one request carrying ``identifiers`` identifiers."""
        total = dict(self.calls)
        for api, calls in self.calls_per_identifier.items():
            total[api] = total.get(api, 0.0) + calls * identifiers
        return total

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestCost:
        return cls(dict(data["calls"]), dict(data.get("calls_per_identifier", {})),
                   float(data.get("completion_seconds", 0.0)), data.get("note", ""))


@dataclass(frozen=True)
class Manifest:
    """A validated connector manifest plus the package it came from (to find its credentials schema)."""

    id: str
    name: str
    version: str
    description: str
    documentation_url: str
    capabilities: tuple[Capability, ...]
    credentials_schema_path: str
    egress_hosts: tuple[str, ...]
    rate_limits: tuple[RateLimit, ...]
    target_share: float
    hooks: tuple[str, ...]
    raw: Mapping[str, Any]
    root: Traversable | None = None
    #: ``timing.call_seconds``: the longest one hook call may take (None: not declared).
    call_seconds: float | None = None
    #: ``timing.min_check_interval_seconds``: the soonest a pending result asks to be called again.
    min_check_interval_seconds: float | None = None
    #: ``regulations``: those whose requests it carries out (default: every regulation of the request contract).
    regulations: tuple[str, ...] = REGULATIONS
    #: ``request_costs``: remote calls per request type (empty: not declared).
    request_costs: Mapping[str, RequestCost] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], root: Traversable | None = None) -> Manifest:
        """Validate ``data`` against ``manifest.schema.json`` (raises :class:`SchemaViolation`)."""
        validate(framework_validator("manifest"), dict(data), "manifest")
        return cls(
            id=data["id"],
            name=data["name"],
            version=data["version"],
            description=data["description"],
            documentation_url=data["documentation_url"],
            capabilities=tuple(
                Capability(c["hook"], tuple(c["identifier_categories"]), c["mode"], c["description"],
                           tuple(c["regulations"]) if "regulations" in c else None,
                           bool(c.get("reports_verification", False)))
                for c in data["capabilities"]
            ),
            credentials_schema_path=data["credentials_schema"],
            egress_hosts=tuple(data["egress_hosts"]),
            rate_limits=tuple(RateLimit(**r) for r in data["rate_limits"]),
            target_share=float(data["target_share"]),
            hooks=tuple(data["hooks"]),
            raw=data,
            root=root,
            call_seconds=_number(data.get("timing", {}).get("call_seconds")),
            min_check_interval_seconds=_number(data.get("timing", {}).get("min_check_interval_seconds")),
            regulations=tuple(data.get("regulations", REGULATIONS)),
            request_costs={kind: RequestCost.from_dict(cost) for kind, cost in data.get("request_costs", {}).items()},
        )

    def capability(self, hook: str) -> Capability | None:
        return next((c for c in self.capabilities if c.hook == hook), None)

    def regulations_for(self, hook: str) -> tuple[str, ...]:
        """The regulations whose requests ``hook`` carries out: its capability's, within the manifest's."""
        capability = self.capability(hook)
        narrowed = capability.regulations if capability is not None else None
        return tuple(r for r in self.regulations if narrowed is None or r in narrowed)

    def rate_limit(self, api: str) -> list[RateLimit]:
        return [r for r in self.rate_limits if r.api == api]

    def credentials_schema(self) -> dict[str, Any]:
        """The connector's credentials JSON Schema, read from its package."""
        if self.root is None:
            raise FileNotFoundError(f"manifest of {self.id!r} was not loaded from a package")
        node = self.root
        for part in self.credentials_schema_path.split("/"):
            node = node.joinpath(part)  # one part at a time: Python 3.11's Traversable takes one
        return load_schema(node)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def contract_problems(manifest: Manifest, implemented: set[str], known: tuple[str, ...]) -> list[str]:
    """Every way the manifest and the implemented hooks disagree (empty when they match).

    Each declared hook must be implemented and each implemented hook declared (and known: a misspelling is
    caught here); every request hook needs exactly one capability entry, and every capability must name a
    hook the connector declares and implements.
    """
    declared = set(manifest.hooks)
    described = [c.hook for c in manifest.capabilities]
    unknown = implemented - set(known)
    undeclared = implemented - declared
    found = {  # message template -> the hooks it names; a template naming none is no problem
        "implements unknown hook(s) {} (a misspelling?)": unknown,
        "implements hook(s) not declared in its manifest: {}": undeclared if undeclared - unknown else set(),
        "declares hook(s) it does not implement: {}": declared - implemented,
        "declares hook(s) with no capability entry: {}":
            {h for h in declared if h != "test_connection" and manifest.capability(h) is None},
        "has capability entries for hook(s) it does not declare and implement: {}":
            set(described) - (implemented & declared),
        "has more than one capability entry for: {}": {h for h in described if described.count(h) > 1},
    }
    return [template.format(", ".join(sorted(hooks))) for template, hooks in found.items() if hooks]


def plugin_package(plugin: object) -> str:
    """The package a plugin (a module or any object) belongs to: where its manifest lives."""
    module = plugin if isinstance(plugin, ModuleType) else sys.modules[type(plugin).__module__]
    return module.__package__ or module.__name__


def load_manifest(plugin: object) -> Manifest:
    """Read and validate the manifest of ``plugin``: ``manifest.yaml`` at the root of its package."""
    root = resources.files(plugin_package(plugin))
    text = root.joinpath(MANIFEST_FILE).read_text(encoding="utf-8")
    data = copy.deepcopy(_parsed(text))  # a copy: the manifest keeps it (raw), and a host may change that
    if not isinstance(data, Mapping):
        raise ValueError(f"{MANIFEST_FILE} must hold a mapping")
    return Manifest.from_dict(data, root)


@functools.lru_cache(maxsize=16)
def _parsed(text: str) -> Any:
    """The YAML of a manifest, parsed once per text: the pure-Python parser takes ~40 ms for this one, and every
    configuration loaded (each ``check``, each host) reads the manifest again."""
    return yaml.safe_load(text)

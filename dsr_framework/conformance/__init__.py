"""The connector conformance harness: named checks a host runs on a connector before it trusts it.

Run it with pytest (the plugin is installed with this package and does nothing unless asked)::

    pytest --dsr-conformance=mparticle            # one or more connector names, comma-separated

A connector makes itself testable by registering a **conformance target** in the entry-point group
``dsr.conformance`` under its own name. The target is a function returning a context manager that yields a
:class:`ConformanceTarget`: where to send requests (usually a local simulator it starts), a good and a bad
configuration, a subject that exists and one that doesn't::

    # pyproject.toml
    [project.entry-points."dsr.conformance"]
    myconnector = "mypackage.conformance:target"

    # mypackage/conformance.py
    @contextlib.contextmanager
    def target():
        with MySimulator() as sim:
            yield ConformanceTarget(good_config=..., bad_config=..., existing_subject={"email": ...},
                                    missing_subject={"email": ...}, allowed_hosts={"127.0.0.1"},
                                    prepare=sim.reseed, remote_writes=sim.count_writes)

The harness knows nothing about any vendor: it reads the connector's manifest and credentials schema and
drives its hooks through the framework's host facade, as a host would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["ENTRY_POINT_GROUP", "ConformanceTarget", "load_target"]

ENTRY_POINT_GROUP = "dsr.conformance"


@dataclass
class ConformanceTarget:
    """What a connector supplies so the harness can exercise it.

    Attributes:
        good_config: a configuration that works against the target.
        bad_config: a schema-valid configuration whose credentials are refused.
        existing_subject: identities (by category) of a subject the target holds data for.
        missing_subject: identities of a subject the target has never heard of.
        allowed_hosts: hosts (names or IPs) the target listens on; traffic there is allowed besides the
            manifest's egress hosts.
        prepare: called before each capability check, to (re)create the existing subject.
        remote_writes: the number of writes that took effect remotely so far (submissions, uploads); lets the
            harness prove that a repeated call is idempotent. None skips that check, with a reason.
        budgets: seconds each hook may take to reach a final result (default 60 asynchronous, 20 synchronous).
        plugin: the connector object, when it is not installed through the ``dsr.connectors`` entry point.
        regulation: the regulation of the requests the harness sends.
    """

    good_config: Mapping[str, Any]
    bad_config: Mapping[str, Any]
    existing_subject: Mapping[str, str]
    missing_subject: Mapping[str, str]
    allowed_hosts: set[str] = field(default_factory=lambda: {"127.0.0.1", "localhost", "::1"})
    prepare: Callable[[], None] | None = None
    remote_writes: Callable[[], int] | None = None
    budgets: Mapping[str, float] = field(default_factory=dict)
    plugin: object | None = None
    regulation: str = "gdpr"

    def __repr__(self) -> str:  # configs hold secrets
        return f"ConformanceTarget(allowed_hosts={sorted(self.allowed_hosts)!r})"


TargetFactory = Callable[[], AbstractContextManager[ConformanceTarget]]


def load_target(name: str) -> TargetFactory:
    """The registered target factory of connector ``name`` (``LookupError`` if there is none)."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: TargetFactory = ep.load()
            return factory
    raise LookupError(f"connector {name!r} registers no conformance target in the {ENTRY_POINT_GROUP!r} "
                      "entry-point group")

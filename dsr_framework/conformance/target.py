"""What a connector supplies so the harness can exercise it: a target (where, with what) and an oracle (what
the service itself says happened)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dsr_framework.host import entry_points
from dsr_framework.urls import LOOPBACK_HOSTS

__all__ = ["ENTRY_POINT_GROUP", "ConformanceTarget", "Oracle", "TargetFactory", "load_target"]

ENTRY_POINT_GROUP = "dsr.conformance"


@runtime_checkable
class Oracle(Protocol):
    """The service's own answers about a subject: the ground truth the harness judges results against.

    Implement it by asking the service (or the simulator standing in for it) directly, never through the
    connector under test: a connector and its oracle must not be able to share a mistake.
    """

    def exists(self, subject: Mapping[str, str]) -> bool:
        """True when the service holds anything for the subject these identities name."""
        ...

    def opted_out(self, subject: Mapping[str, str], regulation: str) -> bool:
        """True when the service records the subject as opted out (of sale, sharing or processing)."""
        ...

    def held_data(self, subject: Mapping[str, str]) -> Collection[str]:
        """Values the service holds for the subject that an access export must contain (as text, in a file)."""
        ...

    def writes(self) -> int:
        """How many writes have taken effect in the service so far (submissions, uploads, changes)."""
        ...


@dataclass
class ConformanceTarget:
    """Where and how the harness exercises a connector.

    Attributes:
        good_config: a configuration that works against the target.
        bad_config: a schema-valid configuration whose credentials the target refuses.
        existing_subject: identities (by category) of a subject the target holds data for.
        missing_subject: identities of a subject the target has never heard of.
        oracle: answers what happened in the service (:class:`Oracle`); without one, the checks that judge
            outcomes cannot run and the connector is not trusted.
        allowed_hosts: hosts (names or IPs) the target listens on; traffic there is allowed besides the
            manifest's egress hosts. Nothing else is.
        prepare: called before each runtime check, to (re)create the existing subject and forget the rest.
        budgets: seconds each hook may take to reach a final result (default 60 asynchronous, 20 synchronous).
        min_check_interval: the soonest (seconds) a pending result may ask to be called again with
            ``good_config``; default the manifest's ``timing.min_check_interval_seconds``, else 1.
        max_calls: the most hook calls one request may need before it counts as a busy loop.
        call_seconds: a per-call limit tighter than the manifest's ``timing.call_seconds`` (never looser).
        plugin: the connector object, when it is not installed through the ``dsr.connectors`` entry point.
        regulation: the regulation of the requests the harness sends.
    """

    good_config: Mapping[str, Any]
    bad_config: Mapping[str, Any]
    existing_subject: Mapping[str, str]
    missing_subject: Mapping[str, str]
    oracle: Oracle | None = None
    allowed_hosts: set[str] = field(default_factory=lambda: set(LOOPBACK_HOSTS))
    prepare: Callable[[], None] | None = None
    budgets: Mapping[str, float] = field(default_factory=dict)
    min_check_interval: float | None = None
    max_calls: int = 20
    call_seconds: float | None = None
    plugin: object | None = None
    regulation: str = "gdpr"

    def __repr__(self) -> str:  # configs hold secrets
        return f"ConformanceTarget(allowed_hosts={sorted(self.allowed_hosts)!r}, oracle={self.oracle is not None})"


TargetFactory = Callable[[], AbstractContextManager[ConformanceTarget]]


def load_target(name: str) -> TargetFactory:
    """The registered target factory of connector ``name`` (``LookupError`` if there is none)."""
    entry = entry_points(ENTRY_POINT_GROUP).get(name)
    if entry is None:
        raise LookupError(f"connector {name!r} registers no conformance target in the {ENTRY_POINT_GROUP!r} "
                          "entry-point group")
    factory: TargetFactory = entry.load()
    return factory

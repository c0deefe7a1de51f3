"""What a connector supplies so the harness can exercise it: a target (where, with what) and an oracle (what
the service itself says happened)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dsr_framework.host import entry_points
from dsr_framework.urls import LOOPBACK_HOSTS

__all__ = ["ENTRY_POINT_GROUP", "OPTIONAL_ORACLE_METHODS", "ORACLE_METHODS", "ConformanceTarget", "Oracle",
           "TargetFactory", "load_target", "target_problems"]

ENTRY_POINT_GROUP = "dsr.conformance"


@runtime_checkable
class Oracle(Protocol):
    """The service's own answers about a subject: the ground truth the harness judges results against.

    Implement it by asking the service (or the simulator standing in for it) directly, never through the
    connector under test: a connector and its oracle must not be able to share a mistake.

    ``subject`` holds one or more identities of one person, by category. The harness also asks with each
    identity alone, and expects the same answer: an oracle that finds people by one category only would be
    blind to a connector that ignores the others. It asks each question twice in a row, and expects the same
    answer twice.
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


#: What every oracle (and witness) answers; :func:`target_problems` refuses one that lacks any of them.
ORACLE_METHODS = ("exists", "opted_out", "held_data", "writes")
#: What an oracle may answer besides: ``calls()``, every API call the service received, as ``(seconds, api)``
#: pairs (any one clock; ``api`` as the manifest's ``rate_limits[].api`` names it), oldest first. The checks of
#: the declared rate limits need it.
OPTIONAL_ORACLE_METHODS = ("calls",)


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
        regulation: the regulation of most requests the harness sends (each other regulation the manifest
            declares gets checks of its own).
        bystanders: identities of other people the service holds, each with data of its own, that
            ``prepare()`` seeds too; one should be a namesake of ``existing_subject`` (same name, a look-alike
            email). After every request the oracle is asked about each of them: nobody else may be erased, opted
            out, changed, or exported.
        personal_data: names, phone numbers, addresses and other personal values the service holds for
            ``existing_subject`` and the bystanders (besides their identities), which must never appear in logs,
            stdout, stderr or file names, in any form.
        witness: a second oracle that reaches the service by an independent path (its raw storage, another
            API); the harness asks it the same questions and fails when the two disagree.
        writable_paths: folders the connector may write in besides each request's output directory (a lock or
            state file that ``good_config`` names).
        concurrent_requests: how many requests the concurrency check makes, in rounds of one request per person
            (the existing subject and each bystander) at the same moment.
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
    bystanders: Sequence[Mapping[str, str]] = ()
    personal_data: Collection[str] = ()
    witness: Oracle | None = None
    writable_paths: Collection[str] = ()
    concurrent_requests: int = 8

    def __repr__(self) -> str:  # configs hold secrets
        return f"ConformanceTarget(allowed_hosts={sorted(self.allowed_hosts)!r}, oracle={self.oracle is not None})"


TargetFactory = Callable[[], AbstractContextManager[ConformanceTarget]]


def _oracle_problems(oracle: object, name: str) -> list[str]:
    missing = [method for method in ORACLE_METHODS if not callable(getattr(oracle, method, None))]
    problems = [f"its {name} lacks {', '.join(f'{m}()' for m in missing)} (an oracle answers "
                f"{', '.join(f'{m}()' for m in ORACLE_METHODS)})"] if missing else []
    extra = [m for m in OPTIONAL_ORACLE_METHODS if hasattr(oracle, m) and not callable(getattr(oracle, m))]
    return problems + [f"its {name}'s {m} is not a method" for m in extra]


def _subject_problems(name: str, subject: object) -> list[str]:
    if not isinstance(subject, Mapping) or not subject:
        return [f"{name} must be a non-empty mapping of identity category to value"]
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in subject.items()):
        return [f"{name} must map identity categories to non-empty strings"]
    return []


def target_problems(target: ConformanceTarget) -> list[str]:
    """Every way ``target`` cannot serve the checks (empty when it can): refused when the target starts."""
    problems = _subject_problems("existing_subject", target.existing_subject)
    problems += _subject_problems("missing_subject", target.missing_subject)
    bystanders = target.bystanders if isinstance(target.bystanders, Sequence) else [target.bystanders]
    for index, bystander in enumerate(bystanders):
        problems += _subject_problems(f"bystanders[{index}]", bystander)
        if bystander in (target.existing_subject, target.missing_subject):
            problems.append(f"bystanders[{index}] is existing_subject or missing_subject; a bystander is someone else")
    if target.oracle is not None:
        problems += _oracle_problems(target.oracle, "oracle")
    if target.witness is not None:
        problems += _oracle_problems(target.witness, "witness")
    if not isinstance(target.concurrent_requests, int) or target.concurrent_requests < 2:
        problems.append("concurrent_requests must be an integer of at least 2")
    return problems


def load_target(name: str) -> TargetFactory:
    """The registered target factory of connector ``name`` (``LookupError`` if there is none)."""
    entry = entry_points(ENTRY_POINT_GROUP).get(name)
    if entry is None:
        raise LookupError(f"connector {name!r} registers no conformance target in the {ENTRY_POINT_GROUP!r} "
                          "entry-point group")
    factory: TargetFactory = entry.load()
    return factory

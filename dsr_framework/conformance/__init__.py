"""The connector conformance harness: named checks a host runs on a connector before it trusts it with people's
data. It judges a connector by what happened in the service (the target's oracle), not by what the connector
reports; and by what happened to everyone there (the target's bystanders), across every declared regulation,
across a restart (a fresh process), with requests running at once, and in the host's own process.

Run it with pytest (the plugin is installed with this package and does nothing unless asked)::

    pytest --dsr-conformance=acme            # one or more connector names, comma-separated

or from your own tests::

    from dsr_framework.conformance import run_conformance

    def test_acme_conforms():
        verdict = run_conformance("acme")
        assert verdict.ok, verdict.table()

A connector makes itself testable by registering a **conformance target** in the entry-point group
``dsr.conformance`` under its own name: a function returning a context manager that yields a
:class:`ConformanceTarget` (where to send requests, a good and a refused configuration, a subject that exists
and one that doesn't, other people the service holds) with an :class:`Oracle` (what the service itself says:
does the subject exist, has it opted out, what data does it hold, how many writes took effect, and which calls
it received) and, ideally, a witness that answers the same by another path. ``docs/connector-authors.md``
walks through a complete example (``examples/acme``) and explains every check.

The harness knows nothing about any vendor: it reads the connector's manifest and credentials schema and
drives its hooks through the framework's host facade, as a host would.
"""

from __future__ import annotations

from dsr_framework.conformance.outcomes import CheckFailed, CheckSkipped, MissingPiece
from dsr_framework.conformance.runner import run_conformance
from dsr_framework.conformance.target import ENTRY_POINT_GROUP, ConformanceTarget, Oracle, TargetFactory, load_target
from dsr_framework.conformance.verdict import Row, Verdict

__all__ = ["ENTRY_POINT_GROUP", "CheckFailed", "CheckSkipped", "ConformanceTarget", "MissingPiece", "Oracle", "Row",
           "TargetFactory", "Verdict", "load_target", "run_conformance"]

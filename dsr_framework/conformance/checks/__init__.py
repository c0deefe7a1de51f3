"""The conformance checks, in the order they run. :data:`CHECKS` lists each with what it proves.

Each module holds one family: :mod:`.static` reads the connector's files; :mod:`.outcomes` drives each request
kind and judges it by the oracle; :mod:`.cancel` judges the optional ``handle_cancel`` where it is declared;
:mod:`.declared` compares what the manifest declares (regulations, identity
categories, settings, rate limits, a read-only connection test) with what the connector does; :mod:`.others`
makes sure nobody but the subject is touched, alone and with requests running at once; :mod:`.process` repeats
and resumes requests in a fresh process and watches the host's own process; :mod:`.oracle` cross-checks the
oracle; :mod:`.output` searches the connector's output and makes a hook raise.
"""

from __future__ import annotations

from dsr_framework.conformance.checks import cancel, declared, oracle, others, outcomes, output, process, static
from dsr_framework.conformance.checks.registry import CHECKS, KINDS, Check, run_check

__all__ = ["CHECKS", "KINDS", "Check", "run_check"]

#: The order the families run in: what a connector declares about itself first, then what it does, then what it
#: does to everyone else, to the host's process, and what its oracle is worth; its output last.
FAMILIES = (static, outcomes, cancel, declared, others, process, oracle, output)
CHECKS.sort(key=lambda c: [f.__name__ for f in FAMILIES].index(c.function.__module__))  # stable: kept in a family

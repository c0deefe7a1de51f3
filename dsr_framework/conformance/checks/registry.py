"""The registry of conformance checks: each check is a plain function, registered with what it proves.

A check passes by returning; it ends otherwise by raising :class:`CheckFailed` (a defect, named),
:class:`CheckSkipped` (not part of this connector's contract) or :class:`MissingPiece` (the target or its
oracle lacks what the check needs). Static checks read the connector and its files; runtime checks drive its
hooks through the host facade against its conformance target and judge the outcome by the target's oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dsr_framework.conformance.frame import run_runtime
from dsr_framework.conformance.session import ConnectorUnderTest
from dsr_framework.models import HOOK_FOR_TYPE

__all__ = ["CHECKS", "KINDS", "REGULATIONS", "Check", "check", "declared_kinds", "hook_of", "run_check"]

KINDS = ("access", "deletion", "opt_out")
REGULATIONS = ("gdpr", "ccpa")  #: the request contract's; a check per regulation skips those not declared


@dataclass(frozen=True)
class Check:
    """One named check: what it proves, whether it needs the target, and its parameters (if any)."""

    name: str
    proves: str
    function: Callable[..., None]
    runtime: bool
    params: tuple[str, ...] = ()

    def ids(self) -> list[tuple[str, str | None]]:
        """``(display name, parameter)`` for each run of this check."""
        if not self.params:
            return [(self.name, None)]
        return [(f"{self.name}[{param}]", param) for param in self.params]


CHECKS: list[Check] = []


def hook_of(kind: str) -> str:
    """The hook serving requests of ``kind``."""
    return HOOK_FOR_TYPE[kind]  # type: ignore[index]  # KINDS are exactly the request types


def declared_kinds(cut: ConnectorUnderTest, among: tuple[str, ...] = KINDS) -> list[str]:
    """The request kinds (of ``among``, in that order) whose hooks the manifest declares."""
    return [kind for kind in among if hook_of(kind) in cut.manifest.hooks]


def check(name: str, proves: str, *, runtime: bool = False,
          params: tuple[str, ...] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated function as check ``name`` (checks run in the order they are registered)."""
    def register(function: Callable[..., None]) -> Callable[..., None]:
        CHECKS.append(Check(name, proves, function, runtime, params))
        return function

    return register


def run_check(cut: ConnectorUnderTest, selected: Check, param: str | None) -> None:
    """Run one check on ``cut``; returns if it passed, raises an outcome otherwise."""
    if selected.runtime:
        run_runtime(cut, selected.function, param)
    else:
        selected.function(cut, param)

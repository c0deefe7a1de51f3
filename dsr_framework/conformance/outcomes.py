"""How a check ends other than by passing. Messages are written by the harness and name the defect; they never
quote a configured secret (the pytest plugin and the runner scrub them again, in case a connector's text
carries part of one)."""

from __future__ import annotations

__all__ = ["CheckFailed", "CheckSkipped", "MissingPiece"]


class CheckFailed(AssertionError):
    """The connector broke the contract; the message says how."""


class CheckSkipped(Exception):
    """The check does not apply to this connector (it declares no such capability)."""


class MissingPiece(Exception):
    """The check cannot judge the connector because the target (or its oracle) lacks something.

    This is not a pass: the run fails unless the host explicitly accepts missing pieces
    (``--dsr-conformance-allow-skips``), in which case the check is reported as skipped.
    """

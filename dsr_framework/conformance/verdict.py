"""The verdict: one row per check, and whether a host may trust the connector."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Outcome", "Row", "Verdict"]

Outcome = Literal["pass", "fail", "skip", "missing", "error"]
_SHOWN = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "missing": "MISSING", "error": "ERROR"}


@dataclass(frozen=True)
class Row:
    """One check's outcome on one connector; ``reason`` is already scrubbed of secrets and emails."""

    connector: str
    check: str
    outcome: Outcome
    reason: str = ""


@dataclass
class Verdict:
    """Every row of a run. ``missing`` rows (no target, no oracle) count against trust unless allowed."""

    rows: list[Row] = field(default_factory=list)
    allow_skips: bool = False

    def trusted(self, connector: str | None = None) -> bool:
        """True when no check failed or errored and nothing was missing (unless missing pieces are allowed)."""
        bad = {"fail", "error"} | (set() if self.allow_skips else {"missing"})
        rows = [r for r in self.rows if connector is None or r.connector == connector]
        return bool(rows) and not any(r.outcome in bad for r in rows)

    @property
    def ok(self) -> bool:
        return self.trusted()

    def connectors(self) -> list[str]:
        return list(dict.fromkeys(r.connector for r in self.rows))

    def table(self, width: int | None = None) -> str:
        """A plain-text table per connector (check, result, reason), sized to fit ``width`` columns."""
        width = width or shutil.get_terminal_size((120, 24)).columns
        lines: list[str] = []
        several = len(self.connectors()) > 1
        for connector in self.connectors():
            rows = [r for r in self.rows if r.connector == connector]
            if several:
                lines.append(f"[{connector}]")
            name_width = max(len(r.check) for r in rows)
            room = max(60, width - name_width - 11)  # narrow terminals wrap
            lines.append(f"{'check':<{name_width}}  {'result':<7}  reason")
            for row in rows:
                reason = " ".join(row.reason.split())
                reason = reason if len(reason) <= room else reason[:room - 1] + "…"
                lines.append(f"{row.check:<{name_width}}  {_SHOWN[row.outcome]:<7}  {reason}".rstrip())
            lines.append(self.summary(connector))
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def summary(self, connector: str) -> str:
        """One line: the counts and whether a host may trust this connector."""
        rows = [r for r in self.rows if r.connector == connector]
        counts = {kind: sum(r.outcome == kind for r in rows) for kind in _SHOWN}
        shown = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        if self.trusted(connector):
            allowed = " (missing pieces allowed)" if counts["missing"] else ""
            return f"{connector}: TRUSTED{allowed} ({shown})"
        return f"{connector}: NOT TRUSTED ({shown})"

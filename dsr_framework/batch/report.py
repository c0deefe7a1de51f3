"""The backlog's report: one line per request, as CSV (for people) and JSON (for tools), written 0600.

Each line says how the request ended (``completed``, ``failed``, ``pending``: not final yet, ``not started``),
the error class of a failure, whether a completed request was verified (:func:`verification_of`, the one place
the report reads it; the JSON report's summary counts them, and ``mparticle-dsr batch`` exits 4 when every
request completed and some are unverified), the result's message, the files the result names (receipts,
results archives: the evidence) and the timings, with ``on_time`` against the request's ``due_at``.
Identifiers are not repeated here (the request id is the key), but messages and file names may carry masked
ones: the report is private.

Both are read by people (a spreadsheet, a pager, a terminal), so every cell passes through the one rule for
text shown to people (:func:`dsr_framework.text.for_people`: an escape sequence, a bidi override or a line
break in a request id, an ``output_dir`` or a connector's message shows as a visible escape), the JSON is
written ASCII-only with the same escapes (:func:`~dsr_framework.text.json_for_people`), and a CSV cell that a
spreadsheet would run as a formula (starting ``=``, ``+``, ``-`` or ``@``) is given a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsr_framework.batch.store import Row, Store
from dsr_framework.files import Folder
from dsr_framework.models import format_time, parse_time
from dsr_framework.text import for_people, json_for_people, spreadsheet_cell

__all__ = ["FIELDS", "report_lines", "verification_counts", "verification_of", "write_reports"]

FIELDS = ("request_id", "type", "regulation", "due_at", "outcome", "error_class", "verification",
          "verification_detail", "message", "files", "calls", "retries", "started_at", "finished_at", "on_time")
OUTCOMES = {"new": "not started", "pending": "pending", "completed": "completed", "failed": "failed"}


def verification_of(result: Mapping[str, Any] | None) -> tuple[str, str]:
    """Whether a completed request was verified, and why not: ``("verified" | "unverified" | "not applicable" |
    "not reported", detail)``.

    The one place the report reads verification: the result contract's ``verification`` field
    (:mod:`dsr_framework.verification`), its reasons as ``code: message``; for a connector that does not report it
    yet, the summary keys connectors used before it (``verified``: bool, ``not_verifiable``: the reasons).
    """
    if result is None or result.get("status") != "completed":
        return "", ""
    verification = result.get("verification")
    if isinstance(verification, Mapping):
        return _declared(verification)
    return _from_summary(result.get("summary") or {})


def _declared(verification: Mapping[str, Any]) -> tuple[str, str]:
    """The result's own ``verification``: its status in words, its reasons as ``code: message``."""
    reasons = verification.get("reasons") or []
    detail = "; ".join(f"{r.get('code')}: {r.get('message')}" for r in reasons if isinstance(r, Mapping))
    return str(verification.get("status", "not reported")).replace("_", " "), detail


def _from_summary(summary: Mapping[str, Any]) -> tuple[str, str]:
    """A connector that predates the field: ``verified`` (bool) and ``not_verifiable`` (the reasons)."""
    reasons = summary.get("not_verifiable") or []
    detail = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)
    if isinstance(summary.get("verified"), bool):
        return ("verified" if summary["verified"] else "unverified"), detail
    return ("unverified", detail) if detail else ("not reported", "")


def _time(epoch: float | None) -> str:
    return format_time(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else ""


def _on_time(row: Row) -> str:
    due = row.request.get("due_at")
    if not due:
        return ""
    deadline = parse_time(due).timestamp()
    if row.finished_at is not None:
        return "yes" if row.finished_at <= deadline else "no"
    return "overdue" if datetime.now(UTC).timestamp() > deadline else ""


def report_line(row: Row) -> dict[str, Any]:
    """One request's line of the report."""
    result = row.result or {}
    error = result.get("error") or {}
    verdict, detail = verification_of(row.result)
    return {
        "request_id": row.request["request_id"], "type": row.request["type"],
        "regulation": row.request["regulation"], "due_at": row.request.get("due_at", ""),
        "outcome": OUTCOMES[row.status], "error_class": error.get("class", "") if row.status == "failed" else "",
        "verification": verdict, "verification_detail": detail, "message": result.get("message", ""),
        "files": [f["path"] for f in result.get("files", [])], "calls": row.calls, "retries": row.retries,
        "started_at": _time(row.started_at), "finished_at": _time(row.finished_at), "on_time": _on_time(row),
    }


def report_lines(store: Store) -> list[dict[str, Any]]:
    return [report_line(row) for row in store.rows()]


def _cell(value: Any) -> str:
    """One cell by the one rule for cells a person opens (:func:`~dsr_framework.text.spreadsheet_cell`); a list
    (the files) as its items joined."""
    return spreadsheet_cell("; ".join(str(v) for v in value) if isinstance(value, list) else value)


def _csv(lines: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for line in lines:
        writer.writerow([_cell(line[name]) for name in FIELDS])
    return buffer.getvalue().encode("utf-8")


def _json(lines: list[dict[str, Any]]) -> bytes:
    outcomes = Counter(line["outcome"] for line in lines)
    errors = Counter(line["error_class"] for line in lines if line["error_class"])
    summary = {"generated_at": format_time(datetime.now(UTC)), "requests": len(lines), "outcomes": dict(outcomes),
               "error_classes": dict(errors), "verification": verification_counts(lines)}
    body = ",\n".join(json_for_people(_for_people(line), indent=None) for line in lines)
    return f'{{"summary": {json_for_people(_for_people(summary), indent=None)},\n"requests": [\n{body}\n]}}\n'.encode()


def verification_counts(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many completed requests were verified, unverified (a person should look), not applicable, not
    reported."""
    return dict(Counter(line["verification"] for line in lines if line["outcome"] == "completed"))


def _for_people(value: Any) -> Any:
    """``value`` with every string in it (keys too) through :func:`for_people`; numbers and the rest as they are."""
    if isinstance(value, str):
        return for_people(value)
    if isinstance(value, Mapping):
        return {for_people(k): _for_people(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_people(v) for v in value]
    return value


def write_reports(store: Store, folder: Folder, name: str = "report") -> tuple[Path, Path]:
    """Write ``report.csv`` and ``report.json`` into ``folder`` (0600, replacing them atomically); their paths."""
    lines = report_lines(store)
    csv_name, json_name = f"{name}.csv", f"{name}.json"
    folder.write(csv_name, _csv(lines))
    folder.write(json_name, _json(lines))
    return folder.path_of(csv_name), folder.path_of(json_name)

"""What the command line shows: check and result tables, durations in words, progress while waiting.

Texts people copy (file paths, commands) are printed on their own lines with ``soft_wrap`` so they are
never cut or folded at the terminal's width. Every value that came from a connector, a server, the state file
or the command line goes through :func:`dsr_framework.text.for_people` (no escape sequence, control character
or extra line reaches the terminal) and is printed as rich ``Text``, never as markup (``[red]`` in a value is
shown, not obeyed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dsr_framework import DsrRequest, Result
from dsr_framework.display import human_duration
from dsr_framework.models import ConnectionResult, format_time
from dsr_framework.redact import mask_email
from dsr_framework.text import for_people

__all__ = ["STATUS_STYLE", "checks_table", "describe_request", "human_duration", "mask_identifier",
           "print_copyable", "result_table", "waiting_line"]

STATUS_STYLE = {"completed": "green", "failed": "red", "pending": "yellow"}


def mask_identifier(name: str, value: str) -> str:
    """An identifier as it may be shown: emails as ``j***@e***.com``, others as their first two characters."""
    if name == "email":
        return mask_email(value)
    return f"{value[:2]}***" if len(value) > 4 else "***"


#: How the command line names a request category whose own name says less than mParticle's (``--mpid``).
SHOWN_AS = {"vendor_id": "mpid"}


def describe_request(request: DsrRequest, sent_as: Mapping[str, str] | None = None,
                     not_sent: Mapping[str, str] | None = None) -> str:
    """``deletion cli-… (gdpr) for email j***@e***.com``: the request as it will be sent, identifiers masked.

    ``sent_as`` maps a category to the mParticle type it is sent as, where they differ (``phone``: sent as
    ``mobile_number``); ``not_sent`` maps each category that is not sent to why (the configuration maps it to
    nothing): shown as such, so the line never names an identifier that does not leave."""
    sent_as, not_sent = sent_as or {}, not_sent or {}

    def shown(name: str, value: str) -> str:
        label = SHOWN_AS.get(name, name)
        kind = sent_as.get(name)
        return f"{label}{f' (as {kind})' if kind and kind != label else ''} {mask_identifier(name, value)}"

    who = ", ".join(shown(n, v) for n, v in sorted(request.identities.items()) if n not in not_sent)
    skipped = "; not sent: " + ", ".join(f"{n} ({why})" for n, why in sorted(not_sent.items())) if not_sent else ""
    return for_people(f"{request.type} {request.request_id} ({request.regulation}) for {who}{skipped}")


def _shown(value: object, style: str = "") -> Text:
    """A value as plain text for a table cell: controls made visible, markup not interpreted."""
    return Text(for_people(value), style=style)


def checks_table(result: ConnectionResult) -> Table:
    """One row per check; the details column wraps rather than cutting the message."""
    table = Table(title="Connection checks", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("details", overflow="fold")
    for check in result.checks:
        table.add_row(_shown(check.name), _shown("ok", "green") if check.ok else _shown("failed", "red"),
                      f"{check.latency_ms:.0f} ms" if check.latency_ms is not None else "", _shown(check.message))
    return table


def _until(when: datetime) -> str:
    return human_duration((when - datetime.now(UTC)).total_seconds())


def result_table(result: Result, request: DsrRequest | None = None, verbose: bool = False) -> Table:
    """The result's status, message and next check; files are printed separately, in full."""
    table = Table(show_header=False, title=_shown(f"{result.request_type} {result.request_id}"))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("status", _shown(result.status, STATUS_STYLE.get(result.status, "")))
    if request is not None:
        table.add_row("regulation", _shown(request.regulation))
    table.add_row("message", _shown(result.message))
    if result.error is not None:
        table.add_row("error class", _shown(result.error.error_class))
    for label, text, style in _contract_rows(result):
        table.add_row(label, _shown(text, style))
    if result.next_check_at is not None:
        table.add_row("next check", f"in {_until(result.next_check_at)} ({format_time(result.next_check_at)})")
    for line in receipt_lines(result):
        table.add_row("receipt", _shown(line))
    if verbose:
        for event in result.audit:
            table.add_row(format_time(event.at), _shown(f"{event.action}: {event.outcome}"))
    return table


def _contract_rows(result: Result) -> list[tuple[str, str, str]]:
    """The result's verification and the action a person must take, each reason on its own row: what a host
    routes on, shown rather than left in the JSON."""
    rows = []
    if result.verification is not None:
        status = result.verification.status.replace("_", " ")
        rows.append(("verification", status, "yellow" if result.unverified else ""))
        rows += [("not verified", f"{r.code}: {r.message}", "yellow") for r in result.verification.reasons]
    if result.action_required is not None:
        rows.append(("action required", f"({result.action_required.error_class}) {result.action_required.message}",
                     "bold yellow"))
    return rows


def receipt_lines(result: Result) -> list[str]:
    """One line per mParticle acknowledgement in the result: verified or not, and by which certificate."""
    lines = []
    for receipt in result.summary.get("receipts") or ():
        if not isinstance(receipt, dict):
            continue
        line = f"request {receipt.get('subject_request_id')}: "
        certificate = receipt.get("certificate") or {}
        if receipt.get("verified"):
            line += (f"signed by {receipt.get('processor_domain')}, signature verified "
                     f"(certificate sha256 {str(certificate.get('sha256'))[:16]}…)")
        else:
            line += f"NOT verified ({receipt.get('reason')}: {receipt.get('detail')})"
        lines.append(for_people(line))
    return lines


def note_to(console: Console) -> Callable[[str], None]:
    """A callback that shows a line of text on ``console`` for a person: escaped, and never wrapped."""
    return lambda text: console.print(Text(for_people(text)), soft_wrap=True)


def print_copyable(console: Console, label: str, text: str) -> None:
    """A label, then ``text`` indented on its own line, never cut or folded (paths, commands)."""
    console.print(_shown(label))
    console.print(_shown(f"  {text}"), soft_wrap=True, highlight=False)


def print_result(console: Console, result: Result, request: DsrRequest | None, verbose: bool) -> None:
    """The result table, then every file's path on its own line."""
    console.print(result_table(result, request, verbose))
    for file in result.files:
        print_copyable(console, f"file ({file.size_bytes:,} bytes, sha256 {file.sha256[:12]}…):", file.path)


def waiting_line(request: DsrRequest, result: Result) -> str:
    """``deletion T-1: mParticle says in_progress; next check in 4 min 10 s (…Z)``."""
    status = result.summary.get("mparticle_status") or "submitted"
    line = f"{request.type} {request.request_id}: mParticle says {status}"
    if result.next_check_at is not None:
        line += f"; next check in {_until(result.next_check_at)} ({format_time(result.next_check_at)})"
    return for_people(line)

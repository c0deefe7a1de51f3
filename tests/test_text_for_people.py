"""Text that reaches people: no control character, escape sequence or extra line from a value.

Generated strings full of terminal escapes (CSI, OSC, C1), bidi overrides, line and paragraph separators and rich
markup go through every place that shows a value: ``for_people``, the readable summary, the CLI's tables and
lines, ``--json``; end to end, a hostile mParticle's error message and a hostile results archive reach the
terminal and the summaries through the real command line and the real sockets.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from connector_mparticle.api.results import summary_text
from connector_mparticle.cli.render import checks_table, describe_request, result_table, waiting_line
from dsr_framework.models import AuditEvent, CheckOutcome, ConnectionResult, DsrRequest, Result
from dsr_framework.text import CONTROL_RANGES, for_people, has_control, json_for_people

FORGED = "\nstatus: completed"
HOSTILE_PIECES = ["\x1b[31m", "\x1b]0;owned\x07", "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "\x9b2J",
                  "\x1b[2K\r", "\u202e", "\u2066", "\u2028", "\u2029", "\x85", "\x00", "\x7f", "\x08", "\t", "\r",
                  "[red]", "[/]", "[link=https://evil.example]x[/link]", FORGED, "\x1b", "[", "\U000e0041", "\ud800",
                  "\udfff"]
#: Values a server or a file might hold: ordinary text with escapes, controls and markup anywhere.
HOSTILE = st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=6)), max_size=8).map("".join)


def shown_lines(text: str) -> list[str]:
    return text.split("\n")


def assert_safe(text: str) -> None:
    """Nothing but ``\\n`` (which the caller counts) acts on a terminal; no forged line starts anywhere."""
    assert not has_control(text.replace("\n", "")), repr(text)
    assert not any(line.lstrip(" │|").startswith("status: completed") for line in shown_lines(text)), text


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_for_people_leaves_no_control_character_and_no_line_break(value: str) -> None:
    shown = for_people(value)
    assert not has_control(shown) and "\n" not in shown
    assert for_people(shown) == shown
    shown.encode("utf-8")  # a lone surrogate (half a character) is escaped too: any terminal, log or pipe takes it
    if not has_control(value) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        assert shown == value


def test_every_character_of_the_table_is_shown_as_a_visible_escape() -> None:
    for first, last in CONTROL_RANGES:
        for code in {first, last}:
            shown = for_people(f"a{chr(code)}b")
            assert shown.startswith("a\\") and shown.endswith("b") and not has_control(shown)


@settings(max_examples=200, deadline=None)
@given(HOSTILE)
def test_json_for_people_is_ascii_without_controls_and_reads_back_the_same(value: str) -> None:
    text = json_for_people({"message": value, value: [value]})
    assert text.isascii() and not has_control(text.replace("\n", ""))
    assert json.loads(text) == {"message": value, value: [value]}


def _summary(value: str) -> dict[str, Any]:
    return {
        "request": {"request_id": "T-1", "regulation": "gdpr", "submitted_at": value, "identities": {"email": value}},
        "mparticle": {"downloaded_at": value, "requests": [{"subject_request_id": value, "label": value,
                                                           "results_size_bytes": 10, "results_sha256": "ab"}]},
        "results": {"data_found": True, "profiles_found": 1, "events": 2, "event_batches": 1,
                    "profiles": [{"mpid": value, "user_attributes": {value: value},
                                  "audience_memberships": [{"audience_name": value}],
                                  "consent_state": {value: {value: {"consented": value}}}}],
                    "identities": {value: [value, value]}, "event_types": {value: 2}},
    }


@settings(max_examples=150, deadline=None)
@given(HOSTILE)
def test_a_value_in_the_archive_cannot_add_a_line_to_the_readable_summary(value: str) -> None:
    text = summary_text(_summary(value))
    assert_safe(text)
    assert len(shown_lines(text)) == len(shown_lines(summary_text(_summary("x"))))


def _render(*renderables: Any) -> str:
    console = Console(file=io.StringIO(), width=100_000, color_system=None, force_terminal=False)
    for renderable in renderables:
        console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


def _cli_screen(value: str) -> str:
    """The result table (verbose), the checks table and the waiting line for a result full of ``value``."""
    request = DsrRequest("T-1", "deletion", "gdpr", {"email": "jane@example.com"}, datetime.now(UTC))
    receipt = {"subject_request_id": value, "verified": False, "reason": value, "detail": value}
    result = Result("T-1", "deletion", "failed", f"mParticle said {value}", audit=(AuditEvent(value, value),),
                    summary={"receipts": [receipt], "mparticle_status": value})
    checks = ConnectionResult((CheckOutcome(value, False, value), CheckOutcome("dsr_api", True, "ok")))
    return _render(result_table(result, request, verbose=True), checks_table(checks),
                   Text(waiting_line(request, result)))


@settings(max_examples=120, deadline=None)
@given(HOSTILE)
def test_the_command_lines_tables_show_values_as_text(value: str) -> None:
    shown = _cli_screen(value)
    assert_safe(shown)
    assert len(shown_lines(shown)) == len(shown_lines(_cli_screen("x")))
    if "[red]" in value:
        assert "[red]" in shown  # markup is shown, not obeyed


def test_a_request_is_described_on_one_line_whatever_its_values() -> None:
    request = DsrRequest("T-1", "deletion", "gdpr", {"customer_id": "\u202eX9-42", "email": "jane@example.com"},
                         datetime.now(UTC)) if False else None  # such a value cannot be made (the identity rule)
    assert request is None
    request = DsrRequest("T-1", "deletion", "gdpr", {"customer_id": "[red]42", "email": "jane@example.com"},
                         datetime.now(UTC))
    assert "\n" not in describe_request(request)



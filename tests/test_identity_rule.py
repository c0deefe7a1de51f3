"""Identity values: no control or invisible formatting character, no whitespace at either end; one rule, stated
in ``dsr_framework.text`` and in ``request.schema.json``, and the two agree over generated strings in every
regex dialect that may read the schema (Python's ``re.search`` as jsonschema uses it; ECMA-262 with and
without the ``u`` flag, through the ``regress`` engine and, where installed, node).

Why it matters: mParticle matches identities exactly, so ``"jane@example.com\\n"`` names nobody; sent as an
erasure, it completes, and the search that verifies it finds nobody either: "verified" while her profile stays.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
import regress
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dsr_framework.models import DsrRequest
from dsr_framework.text import CONTROL_RANGES, IGNORABLE_BLOCK, SPACE_RANGES, SURROGATES, identity_problem
from dsr_framework.validation import SchemaViolation, load_schema

SCHEMA = load_schema(resources.files("dsr_framework") / "schemas" / "request.schema.json")
IDENTITY = SCHEMA["$defs"]["identity"]
PATTERNS = [branch["pattern"] for branch in IDENTITY["not"]["anyOf"]]
SPECIALS = [chr(cp) for a, b in (*CONTROL_RANGES, *SPACE_RANGES) for cp in {a, b, (a + b) // 2}]
#: Strings mixing ordinary characters with controls, separators, bidi overrides, tags and spaces.
IDENTITY_LIKE = st.text(st.one_of(st.sampled_from(SPECIALS), st.characters(codec="utf-8"),
                                  st.sampled_from("ab@.+1 ")), max_size=12)


#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1), written out independently of
#: the table, and the blanks that show as nothing (Braille pattern blank): the characters the attack slipped in.
DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                     (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                     (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
BLANKS = ((0x2800, 0x2800),)
INVISIBLE = st.one_of(*(st.integers(a, b) for a, b in (*DEFAULT_IGNORABLE, *BLANKS, SURROGATES))).map(chr)
VISIBLE = st.characters(categories=["L", "N", "P", "S"], codec="utf-8").filter(lambda c: not _in(CONTROL_RANGES, c))


def _beyond_the_schema(value: str) -> bool:
    """What only the code can refuse: a lone surrogate, an unassigned default-ignorable code point, a value of
    marks and spaces alone (the schema's patterns cannot state these in every regex dialect)."""
    return (any(_in((IGNORABLE_BLOCK, SURROGATES), c) and not _in(CONTROL_RANGES, c) for c in value)
            or (value != "" and all(unicodedata.category(c)[0] in "MZ" for c in value)))


def _values_validator() -> Draft202012Validator:
    return Draft202012Validator({"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/value"})


def _schema_accepts(value: str) -> bool:
    return _values_validator().is_valid(value)


def _ecma_accepts(value: str, flags: str | None) -> bool:
    refused = any(regress.Regex(p, flags).find(value) is not None for p in PATTERNS) if flags else any(
        regress.Regex(p).find(value) is not None for p in PATTERNS)
    return not refused and 1 <= len(value) <= 1024


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    return any(a <= ord(char) <= b for a, b in ranges)


def test_the_table_covers_every_control_format_and_separator_character_this_python_knows() -> None:
    known = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Zl", "Zp")]
    assert [c for c in known if not _in(CONTROL_RANGES, c)] == []
    spaces = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Zs"]
    assert [c for c in spaces if not _in(SPACE_RANGES, c)] == []


def test_the_table_covers_every_default_ignorable_and_blank_character_unicode_lists() -> None:
    listed = [chr(cp) for a, b in (*DEFAULT_IGNORABLE, *BLANKS) for cp in range(a, b + 1)]
    assert [c for c in listed if identity_problem(f"a{c}b") is None] == []
    assert [c for c in listed if not _in(CONTROL_RANGES, c) and not _in((IGNORABLE_BLOCK,), c)] == []


@settings(max_examples=400, deadline=None)
@given(st.text(VISIBLE, max_size=6), INVISIBLE, st.text(VISIBLE, max_size=6))
def test_an_identity_value_holding_an_invisible_or_blank_character_is_refused(before: str, hidden: str,
                                                                                after: str) -> None:
    """Wherever it sits, a default-ignorable character (Hangul fillers, U+034F, variation selectors, tags), a blank
    (U+2800) or a lone surrogate makes the value one mParticle would match as something else: refused, naming the
    code point and never the value."""
    why = identity_problem(before + hidden + after)
    assert why is not None and f"U+{ord(hidden):04X}" in why


@settings(max_examples=300, deadline=None)
@given(st.text(VISIBLE, min_size=1, max_size=12),
       st.lists(st.characters(categories=["Mn", "Me"], codec="utf-8"), max_size=3))
def test_a_value_of_visible_characters_is_accepted_and_one_of_marks_alone_is_not(visible: str,
                                                                                 marks: list[str]) -> None:
    assert identity_problem(visible) is None
    assert identity_problem(visible + "".join(marks)) is None or any(_in(CONTROL_RANGES, m) for m in marks)
    if marks and not any(_in(CONTROL_RANGES, m) for m in marks):
        assert identity_problem("".join(marks)) is not None


def test_the_schema_patterns_are_written_from_the_table() -> None:
    def escaped(ranges: tuple[tuple[int, int], ...]) -> str:
        return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges if b <= 0xFFFF)

    astral = "|".join(chr(cp) for a, b in CONTROL_RANGES if a > 0xFFFF for cp in range(a, b + 1))
    spaces = escaped(SPACE_RANGES)
    assert [f"[{escaped(CONTROL_RANGES)}]", astral, f"^[{spaces}]", f"[{spaces}]$"] == PATTERNS
    assert not any("$" in p and not p.endswith("]$") for p in PATTERNS)  # no end anchor but after a class


@settings(max_examples=400, deadline=None)
@given(IDENTITY_LIKE)
def test_schema_and_code_accept_exactly_the_same_identity_values(value: str) -> None:
    if _beyond_the_schema(value):
        assert identity_problem(value) is not None
        return
    by_code = value != "" and identity_problem(value) is None
    assert _schema_accepts(value) == by_code
    try:
        DsrRequest("T-1", "deletion", "gdpr", {"customer_id": value}, datetime.now(UTC))
        by_model = True
    except SchemaViolation:
        by_model = False
    assert by_model == by_code


@settings(max_examples=300, deadline=None)
@given(IDENTITY_LIKE)
def test_ecma_262_reads_the_schema_patterns_as_python_does(value: str) -> None:
    if _beyond_the_schema(value):
        return
    expected = value != "" and identity_problem(value) is None
    assert _ecma_accepts(value, "u") == expected
    assert _ecma_accepts(value, None) == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_reads_the_schema_patterns_as_python_does_with_and_without_the_u_flag() -> None:
    samples = ["jane@example.com", "jane@example.com\n", " jane", "jane ", "ja\u202ene", "x\U000e0041", "\U0001d173",
               "x\U0001d172", "\U0001f600", "é", "\u00a0x", "x\u3000", "a\u2028b", "a\u200bb", "a\x7fb", "a\x9bb",
               "\U000e0100", "\U000110bc", "\U000110bd"]
    script = ("const [pats, vals] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "const out = {}; for (const f of ['', 'u']) out[f] = vals.map(v => !pats.some(p => new RegExp(p, f)"
              ".test(v)));process.stdout.write(JSON.stringify(out));")
    done = subprocess.run(["node", "-e", script], input=json.dumps([PATTERNS, samples]), capture_output=True,
                          text=True, timeout=30, check=True)
    expected = [identity_problem(v) is None for v in samples]
    assert json.loads(done.stdout) == {"": expected, "u": expected}


@pytest.mark.parametrize("identities", [
    {"email": "jane@example.com\n"}, {"email": "jane@example.com\r\n"}, {"email": " jane@example.com"},
    {"email": "jane@example.com\u00a0"}, {"email": "jane\u202e@example.com"}, {"email": "ja\u200bne@example.com"},
    {"customer_id": "C-1\x00"}, {"customer_id": "C-1\U000e0020"}, {"phone": "+1 800 555 1111\n"},
    {"email\n": "jane@example.com"},
])
def test_a_request_whose_identity_mparticle_would_not_match_cannot_be_made(identities: dict[str, Any]) -> None:
    with pytest.raises(SchemaViolation) as refused:
        DsrRequest("T-1", "deletion", "gdpr", identities, datetime.now(UTC))
    assert "jane" not in str(refused.value)  # the reason names the character, never the value
    with pytest.raises(SchemaViolation):
        DsrRequest.from_dict({"request_id": "T-1", "type": "deletion", "regulation": "gdpr",
                              "identities": identities, "submitted_at": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize(("field", "value"), [("request_id", "T-1\n"), ("submitted_at", "2026-01-01T00:00:00Z\n"),
                                              ("submitted_at", "٢٠٢٦-01-01T00:00:00Z")])
def test_other_request_fields_are_matched_whole_too(field: str, value: str) -> None:
    document = {"request_id": "T-1", "type": "deletion", "regulation": "gdpr",
                "identities": {"email": "jane@example.com"}, "submitted_at": "2026-01-01T00:00:00Z", field: value}
    assert not Draft202012Validator(SCHEMA).is_valid(document)


def test_ordinary_identities_are_still_accepted() -> None:
    for identities in ({"email": "jane.doe+news@example.co.uk"}, {"phone": "+1 (800) 555-1111"},
                       {"customer_id": "Zoë 42"}, {"customer_id": "名前"}, {"push_token": "a\U0001f600b"}):
        DsrRequest("T-1", "deletion", "gdpr", identities, datetime.now(UTC))

"""Characters that must not reach a person unseen, and text made safe to show one.

One table (:data:`CONTROL_RANGES`) names the characters that are invisible or act on a terminal instead of
being shown: C0 and C1 controls (``ESC`` starts every terminal escape sequence: CSI, OSC, DCS…; ``\\x9b`` is a
one-character CSI), ``DEL``, Unicode format characters (bidi overrides and isolates, zero-width characters, the
byte-order mark, tag characters), the line and paragraph separators, and the rest of Unicode's
Default_Ignorable_Code_Point characters (combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
Mongolian and other variation selectors) and blanks that show as nothing (U+2800 BRAILLE PATTERN BLANK). It is
written out here rather than taken from :mod:`unicodedata`, so that every reader of the rule (this module, the
request schema's patterns, a host in another language) agrees whatever its Unicode version; a test checks that it
covers this Python's format characters and Unicode's default-ignorable ones.

Two rules use it:

* :func:`identity_problem`: an identity value (an email, a phone number, a device id…) holds none of these
  characters, no lone surrogate and no default-ignorable code point the table cannot list (unassigned ones in
  U+E0000..U+E0FFF), has at least one character that is neither a mark nor a space (a value of combining marks
  alone shows as nothing), and does not start or end with whitespace (:data:`SPACE_RANGES`). mParticle matches
  identities exactly, so ``"jane@example.com\\n"`` names nobody, and an erasure sent with it would be verified by
  a search that finds nobody either. ``schemas/request.schema.json`` states the same rule (a test compares them).
* :func:`for_people`: any text shown to a person (the terminal, the readable summaries, ``--json``) has each of
  these characters replaced by a visible escape (``\\x1b``, ``\\u202e``, ``\\n``), so a value can neither drive
  the terminal nor add a line: a server message holding ``\\n`` and a forged ``status: completed`` stays on its
  one line, and shows what it tried.

Messages are built so that no value can add a line: :func:`say` fills a template with values that pass
through :func:`for_people` first, and returns :class:`Shown`, text whose line breaks are its template's own.
:func:`shown` is the one door to a person: a :class:`Shown` passes as it is, any other text is escaped whole
(a newline in it shows as ``\\n``), so a message built any other way stays on one line.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["CONTROL_RANGES", "IGNORABLE_BLOCK", "SPACE_RANGES", "SURROGATES", "Shown", "for_people", "has_control",
           "identity_problem", "is_control", "joined", "json_for_people", "lines", "say", "shown", "spreadsheet_cell",
           "without_controls"]

#: Code point ranges (first, last) of the characters no person should be handed unseen (see the module docstring).
CONTROL_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F),  # C0, DEL, C1 (ESC, CSI, OSC, …; \n, \r, \t included)
    (0x00AD, 0x00AD), (0x034F, 0x034F),  # soft hyphen, combining grapheme joiner
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),  # format (Cf)
    (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0x115F, 0x1160), (0x17B4, 0x17B5),  # Hangul choseong and jungseong fillers, Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, joiners, left-to-right and right-to-left marks
    (0x2028, 0x2029),  # line and paragraph separators
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x2800, 0x2800), (0x3164, 0x3164),  # Braille pattern blank, Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB),  # byte-order mark, halfwidth Hangul filler, specials
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
#: Unicode's default-ignorable block beyond the table (unassigned today; a later Unicode may assign them), and the
#: surrogates, which are never characters: refused in identity values by code, since the schema's patterns cannot
#: list them in every regex dialect.
IGNORABLE_BLOCK = (0xE0000, 0xE0FFF)
SURROGATES = (0xD800, 0xDFFF)
#: Whitespace that is shown but must not surround an identity value (Unicode's space separators; the other
#: whitespace characters, tab and newline among them, are controls).
SPACE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x0020), (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F),
    (0x3000, 0x3000),
)


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_CONTROL = re.compile(f"[{_class(CONTROL_RANGES)}]")
#: What :func:`for_people` escapes: the controls, and lone surrogates, which no terminal, log file or pipe can
#: encode (a half of a character, from a server's JSON or a YAML escape, would end the write that meets it).
_NOT_SHOWN = re.compile(f"[{_class((*CONTROL_RANGES, SURROGATES))}]")
_SPACE = f"[{_class(SPACE_RANGES)}]"
_BEYOND_THE_TABLE = re.compile(f"[{_class((IGNORABLE_BLOCK, SURROGATES))}]")
_SURROUNDING_SPACE = re.compile(f"^{_SPACE}|{_SPACE}\\Z")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_control(char: str) -> bool:
    """True when ``char`` is one of :data:`CONTROL_RANGES`."""
    return _CONTROL.fullmatch(char) is not None


def has_control(text: str) -> bool:
    """True when ``text`` holds a character of :data:`CONTROL_RANGES`."""
    return _CONTROL.search(text) is not None


def without_controls(text: str) -> str:
    """``text`` with every character of :data:`CONTROL_RANGES` removed (what a terminal shows of it, roughly)."""
    return _CONTROL.sub("", text)


def identity_problem(value: str) -> str | None:
    """Why ``value`` cannot be an identity value (one of its characters is a control, formatting,
    default-ignorable or blank character or a lone surrogate, it holds nothing but marks and spaces, or it starts
    or ends with whitespace), or None. The reason names the character's code point, never the value."""
    found = _CONTROL.search(value) or _BEYOND_THE_TABLE.search(value)
    if found is not None:
        return f"contains an invisible or control character (U+{ord(found.group()):04X}), which mParticle " \
               "would match as part of the value"
    if _SURROUNDING_SPACE.search(value):
        return "starts or ends with whitespace, which mParticle would match as part of the value"
    if value and all(unicodedata.category(char)[0] in "MZ" for char in value):
        return "has no visible character (only combining marks or spaces), so nobody could read or check it"
    return None


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def for_people(text: Any) -> str:
    """``text`` (any value, as ``str``) safe to show a person: every control, formatting or separator
    character replaced by a visible escape, so it cannot move the cursor, recolour or retitle a terminal,
    reorder what is shown, or start a line. Rich markup is not touched: print the result as plain text."""
    return _NOT_SHOWN.sub(_visible, text if isinstance(text, str) else str(text))


def json_for_people(value: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``value`` as JSON a terminal shows as it is: every non-ASCII character and every control, ``DEL``
    included (which ``json.dumps`` leaves raw), written as an escape. The values read back exactly."""
    return json.dumps(value, indent=indent, ensure_ascii=True, sort_keys=sort_keys).replace("\x7f", "\\u007f")


#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): a cell starting with one is shown
#: with a leading apostrophe, so opening an export never runs what a stored value says.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> str:
    """``value`` as one cell of a CSV file a person opens: text as :func:`for_people` shows it (other values as
    compact JSON), with a leading apostrophe when a spreadsheet would read it as a formula. The exact values go
    in the JSON beside it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return for_people(text)


class Shown(str):
    """Text fit to show a person as it is: made by :func:`say` or :func:`lines`, so every value in it went through
    :func:`for_people` and its line breaks are its templates' own. Never construct one from a value."""

    __slots__ = ()


def say(template: str, /, *values: Any, **named: Any) -> Shown:
    """``template.format(*values, **named)`` with each value through :func:`for_people` first: a newline or an
    escape sequence inside a path, a key or a server's message can never start a line or reach a terminal
    raw. Values are formatted as ``str`` (use ``{}``, ``{name}``; a value's own format spec is not applied)."""
    return Shown(template.format(*(for_people(v) for v in values), **{k: for_people(v) for k, v in named.items()}))


def shown(text: Any) -> Shown:
    """``text`` ready for a person: a :class:`Shown` as it is, anything else escaped whole (one line)."""
    return text if isinstance(text, Shown) else Shown(for_people(text))


def joined(*parts: Any) -> Shown:
    """``parts`` one after the other, each through :func:`shown`."""
    return Shown("".join(shown(part) for part in parts))


def lines(*parts: Any) -> Shown:
    """``parts`` one per line, each through :func:`shown` (a :class:`Shown` part keeps its own lines)."""
    return Shown("\n".join(shown(part) for part in parts))

"""The views under which the redaction rule looks at a text again (:mod:`dsr_framework.redact`): escapes (percent,
JSON and C, HTML) decoded, invisible characters and combining marks dropped, spaced-out characters joined,
compatibility forms read as the characters they look like, and hex, base64 and base32 runs decoded; and
:func:`reduced`, the views that only remove or unescape, applied together.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import re
import sys
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from dsr_framework.text import without_controls

__all__ = ["reduced"]

_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|\\([\\/\"'bfnrt])|\\([0-3][0-7]{2})")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(text: str) -> str:
    """``text`` with JSON and C-style escapes (octal ones too) decoded, left to right as a JSON parser reads them
    (``\\\\`` is one backslash, so an echo escaped twice, JSON inside JSON, decodes once per round)."""
    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        if code:
            return chr(int(code, 16))
        if match.group(4):  # C's octal escape of a byte, as printf("%03o") writes it
            return chr(int(match.group(4), 8))
        return _SIMPLE_ESCAPES.get(match.group(3), match.group(3))

    decoded = _ESCAPE.sub(one, text)
    # A server may escape a non-ASCII character as a UTF-16 surrogate pair: join the halves again.
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _unspaced(text: str) -> str:
    """``text`` with the separator taken out of runs of single characters spaced apart (``a b c d e f g h``,
    ``a-b-c-d-e-f-g-h``: every second character is the same separator) and of hex dumps (``5a:71:38:76``)."""
    text = _SPACED.sub(lambda m: m.group()[::2], text)
    return _HEX_PAIRS.sub(lambda m: m.group().replace(m.group("hexsep"), ""), text)


@functools.cache
def _marks() -> dict[int, None]:
    """Every combining mark (Unicode categories Mn and Me), as a table for :meth:`str.translate` that drops them
    (faster than any regular expression over a class this size): built on first use (a scan of the code points,
    about a tenth of a second), never at import."""
    return {code: None for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) in ("Mn", "Me")}


def _invisible_dropped(text: str) -> str:
    """``text`` without what a reader does not see as characters of their own: controls and formatting characters
    (:func:`~dsr_framework.text.without_controls`: a zero-width space between every two), and combining marks
    (a strike-through or an underline over every character leaves each one readable)."""
    text = without_controls(text)
    return text if text.isascii() else text.translate(_marks())


def reduced(text: str) -> str:
    """``text`` as the rule's decodings that only remove or unescape make it, each applied twice: percent, JSON and
    C escapes, HTML character references, and invisible characters dropped. The characters a leak is made of are
    next to each other here however much padding of that kind a server put between them, so a writer that checks
    a long file in blocks keeps the end of a block in this form to look at again with the next
    (:class:`connector_mparticle.flows.writing.CheckedStream`)."""
    for _ in range(2):  # unquote, not unquote_plus: a "+" may be one of the secret's own characters
        text = _invisible_dropped(html.unescape(_unescape(unquote(text))))
    return text


def _compatible(text: str) -> str:
    """``text`` in NFKC: fullwidth and other compatibility forms read as the characters they look like."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


_SPACED = re.compile(r".(?P<sep>[\s.,;:|·_-])(?:.(?P=sep)){6,}.")
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?P<hexsep>[\s:.-])(?:[0-9A-Fa-f]{2}(?P=hexsep)){6,}[0-9A-Fa-f]{2}")
_HEX_TEXT = re.compile(r"[0-9A-Fa-f]{8,}")  #: four bytes or more written in hex
#: eight bytes or more in base64 (either alphabet): a run of a secret. A short secret (4 to 7 characters) alone in
#: base64 is not looked for: every word of 6 letters would be a candidate.
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]{11,}")
_BASE32_TEXT = re.compile(r"[A-Za-z2-7]{13,}")  #: eight bytes or more in base32
_TO_STANDARD = str.maketrans("-_", "+/")
#: What a decoder could change in an ASCII text: an escape, a control character, a spaced-out run, a hex dump, a
#: run that reads as hex (a short secret's eight digits too), base64 or base32.
_ENCODED = re.compile(rf"[%\\&\x00-\x1f\x7f]|{_SPACED.pattern}|{_HEX_PAIRS.pattern}|{_HEX_TEXT.pattern}|"
                      rf"{_BASE64_TEXT.pattern}")


def _may_be_encoded(text: str) -> bool:
    """True when one of :data:`_DECODERS` could change ``text`` (most texts are looked at once only)."""
    return not text.isascii() or _ENCODED.search(text) is not None


def _decoded_runs(text: str, runs: re.Pattern[str], decode: Callable[[str], bytes], group: int, pad: str) -> str:
    """Every run of ``runs`` in ``text`` decoded at each of the ``group`` alignments it can start at (a run may
    begin with characters of the text around the encoded value): UTF-8, an undecodable byte read as U+FFFD, so
    ASCII survives around it, controls dropped (which also reads UTF-16 as the text it holds), and only the
    legible pieces kept (:data:`_LEGIBLE`). At most as long as the runs, ``group`` times over.

    The runs are decoded together, one call per alignment: each is completed to whole groups with ``pad`` (a digit
    of zero bits, never ``=``, which would end the decoding), so each decodes as it would alone. A text of many
    words is many runs, and a call for each was most of the cost.
    """
    found = [m.group() for m in runs.finditer(text)]
    views = []
    for skip in range(group):
        joined = "".join(piece + pad * (-len(piece) % group) for run in found if (piece := run[skip:]))
        try:
            decoded = decode(joined).decode("utf-8", "replace")
        except ValueError:  # not this encoding at this alignment
            continue
        views += _LEGIBLE.findall(_CONTROLS.sub("", decoded))
    return " ".join(views)


#: The pieces of decoded bytes worth looking at: MIN_SECRET characters or more that are text (bytes that are not
#: UTF-8 end a piece). Bytes decoded from text that was not an encoding are mostly not text, so what a decoding
#: adds to look at stays small.
_LEGIBLE = re.compile(r"[^\ufffd]{4,}")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def _from_hex(text: str) -> str:
    return _decoded_runs(text, _HEX_TEXT, bytes.fromhex, 2, "0")


def _from_base64(text: str) -> str:
    # Both alphabets read as the standard one.
    return _decoded_runs(text.translate(_TO_STANDARD), _BASE64_TEXT, binascii.a2b_base64, 4, "A")


def _from_base32(text: str) -> str:
    return _decoded_runs(text.upper(), _BASE32_TEXT, base64.b32decode, 8, "A")


def _when(trigger: str, decode: Callable[[str], str]) -> Callable[[str], str]:
    """``decode``, called only on a text where ``trigger`` is found (the text itself otherwise: nothing to decode,
    and most texts have nothing; a search in C costs far less than the decoding)."""
    found = re.compile(trigger).search
    return lambda text: decode(text) if found(text) else text


def _decoded_views(views: list[tuple[str, bool]], seen: set[str]) -> list[tuple[str, bool]]:
    """The views one round of :data:`_DECODERS` makes of ``views`` (each with whether a binary decoding may still
    apply to it) that were not ``seen`` before; they are added to ``seen``."""
    made = [(d, any_decoder and not binary) for view, any_decoder in views
            for decode, binary in _DECODERS if any_decoder or not binary
            if (d := decode(view)) not in seen]
    seen.update(view for view, _ in made)
    return made


#: The decodings under which a text is looked at again, each marked binary or not: a server may escape every
#: character of an echo, put an invisible character between every two (which a terminal would not show), space
#: them out, write them in fullwidth forms, or quote a value (the Authorization header itself, say) in hex, base64
#: or base32. Two rounds; a binary decoding is not applied to the output of another (each secret's hex form and
#: base64 characters, and the Basic header built from it, are forms already, so one binary layer over them is
#: found; more layers, and other encodings (base85, rot13, look-alike letters), are beyond this rule).
_DECODERS: tuple[tuple[Callable[[str], str], bool], ...] = (
    (_when(r"[%+]", unquote_plus), False), (_when(r"\\", _unescape), False), (_when("&", html.unescape), False),
    (_when(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\x7f]", _invisible_dropped), False),
    (_when(f"{_SPACED.pattern}|{_HEX_PAIRS.pattern}", _unspaced), False), (_compatible, False),
    (_when(_HEX_TEXT.pattern, _from_hex), True), (_when(_BASE64_TEXT.pattern, _from_base64), True),
    (_when(_BASE32_TEXT.pattern, _from_base32), True))



#: What :func:`reduced` could change: an escape, a reference, a percent sign, a control or any non-ASCII character.
_ESCAPED_OR_PADDED = re.compile(r"[\\%&\x00-\x1f\x7f]|[^\x00-\x7f]")

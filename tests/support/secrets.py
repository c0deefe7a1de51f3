"""Generated secrets, echoes of them in every encoding, and a leak detector written independently of the
redactor (it decodes what it reads instead of encoding the secret), for the property tests."""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import json
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from hypothesis import strategies as st

RUN = 8  #: characters of a secret that count as a trace of it
_BYTE_RUN = 7  #: bytes of a secret that count, inside base64 (7 bytes fix at least 8 base64 characters)
_INVISIBLE = ("\u200b", "\x00", "\x1b", "\u202e", "\ufeff", "\U000e0041")

#: Secrets: random tokens as mParticle issues them, and awkward ones (regex metacharacters, non-ASCII, quotes).
SECRETS = st.one_of(
    st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=8, max_size=48),
    st.text(st.sampled_from("abcXYZ019.*+?()[]{}|^$\\/%&=:;'\" -_~"), min_size=8, max_size=40),
    st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=8, max_size=32),
)
#: Text around an echo: anything, controls and markup included.
NOISE = st.text(max_size=40)


def _every_char(fmt: str) -> Callable[[str], str]:
    return lambda s: "".join(fmt.format(b) for b in s.encode("utf-8"))


def _base64(encode: Callable[[bytes], bytes]) -> Callable[[str, int], str]:
    return lambda s, prefix: encode(b"k" * prefix + s.encode("utf-8")).decode("ascii")


#: How a server may echo text: name -> transform. Case changes apply to ASCII fragments only (upper-casing
#: some other scripts changes their length, and no server does it to a credential).
ENCODINGS: dict[str, Callable[[str, int], str]] = {
    "verbatim": lambda s, _: s,
    "lower": lambda s, _: s.lower() if s.isascii() else s,
    "upper": lambda s, _: s.upper() if s.isascii() else s,
    "json": lambda s, _: json.dumps(s)[1:-1],
    "json-ascii-every-char": lambda s, _: "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else
                                                  json.dumps(c)[1:-1] for c in s),
    "url": lambda s, _: quote(s, safe=""),
    "url-plus": lambda s, _: quote_plus(s),
    "url-every-char": lambda s, _: _every_char("%{:02x}")(s),
    "html-entities": lambda s, _: "".join(f"&#{ord(c)};" for c in s),
    "base64": _base64(base64.b64encode),
    "base64-urlsafe": _base64(base64.urlsafe_b64encode),
    "hex": lambda s, _: s.encode("utf-8").hex(),
    "hex-upper": lambda s, _: s.encode("utf-8").hex().upper(),
    "reversed": lambda s, _: s[::-1],
    "interleaved": lambda s, prefix: _INVISIBLE[prefix % len(_INVISIBLE)].join(s),
    "spaced": lambda s, prefix: " -.:"[prefix % 4].join(s),
    "casefold-upper": lambda s, _: s.upper(),
    "hex-dump": lambda s, prefix: ": -"[prefix % 3].join(f"{b:02x}" for b in s.encode("utf-8")),
    "fullwidth": lambda s, _: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
}


@st.composite
def echoes(draw: st.DrawFn, secret: str) -> tuple[str, str]:
    """(encoding name, a text holding a run of at least :data:`RUN` characters of ``secret`` in that encoding)."""
    start = draw(st.integers(0, len(secret) - RUN))
    fragment = secret[start:start + draw(st.integers(RUN, len(secret) - start))]
    name = draw(st.sampled_from(sorted(ENCODINGS)))
    return name, draw(NOISE) + ENCODINGS[name](fragment, draw(st.integers(0, 5))) + draw(NOISE)


# -- the independent detector -----------------------------------------------------------------------------


def _unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _views(text: str) -> set[str]:
    views = {text, unquote(text), unquote_plus(text), html.unescape(text), _unescape(text), text[::-1],
             re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e007f]", "",
                    text), re.sub(r"(?<=\S)[ .:-](?=\S)", "", text), unicodedata.normalize("NFKC", text)}
    return {v.lower() for v in views}


def _hex_decoded(text: str) -> list[bytes]:
    """Every hex run in ``text`` (separators between pairs taken out), decoded at both alignments."""
    out = []
    for run in re.findall(r"[0-9a-fA-F]{16,}", re.sub(r"(?<=[0-9a-fA-F]{2})[ :-](?=[0-9a-fA-F]{2})", "", text)):
        out += [binascii.unhexlify(run[i:len(run) - (len(run) - i) % 2]) for i in (0, 1)]
    return out


def _base64_decoded(text: str) -> list[bytes]:
    """Every base64 run in ``text``, decoded at every alignment."""
    out = []
    for run in re.findall(r"[A-Za-z0-9+/_-]{10,}", text):
        for skip in range(4):
            piece = run[skip:]
            piece = piece[:len(piece) - len(piece) % 4]
            for alphabet in (None, b"-_"):
                with contextlib.suppress(binascii.Error):
                    out.append(base64.b64decode(piece, altchars=alphabet))
    return out


def traces(text: str, secret: str) -> bool:
    """True when ``text`` holds a trace of ``secret``: a run of :data:`RUN` characters of it (any case, after
    decoding percent, JSON and HTML escapes, reversed, invisible characters removed), or of 7 bytes of it in a
    hex or base64 run. Written from the attacker's side, not from the redactor's list of forms."""
    runs = {low[i:i + RUN] for low in (secret.lower(), secret.upper().lower())
            for i in range(len(low) - RUN + 1)} if len(secret) >= RUN else {secret.lower()}
    if any(run in view for view in _views(text) for run in runs):
        return True
    raw = secret.encode("utf-8")
    hex_runs = {raw[i:i + RUN] for i in range(len(raw) - RUN + 1)}  # 16 digits: 8 bytes of the secret
    b64_runs = {raw[i:i + _BYTE_RUN] for i in range(len(raw) - _BYTE_RUN + 1)}
    return any(run in blob for blob in _hex_decoded(text) for run in hex_runs) or \
        any(run in blob for blob in _base64_decoded(text) for run in b64_runs)

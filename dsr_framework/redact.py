"""Secrets and personal data kept out of everything that leaves a connector: results, state, receipts, files,
logs, the terminal.

**The rule** (:meth:`Redactor.leaks`, the only one for outgoing text). A text leaks a secret when it holds,
ignoring case, any run of :data:`FRAGMENT_LENGTH` (8) characters of one of the secret's forms (or a whole form,
for a secret shorter than that), or does so once decoded. A secret leaves a process in more forms than its own
text, and a hostile server can echo any of them back, whole or cut short, or lower-cased (in a host name). The
forms (:func:`secret_forms`): the secret itself; JSON-escaped; URL-encoded as a query or form body writes it; the
base64 characters it alone determines at each of the three alignments (that is how a Basic ``key:secret``
header carries it, for any key length; standard and URL-safe alphabets); reversed; and hex, where a run means
eight characters of the secret (16 hex digits, so a SHA-256 digest cannot match by chance). What a connector
really sends (the Basic header value, the base64 of ``key:secret``, each access token) is registered as a secret
of its own. The decodings (:data:`_DECODERS`, two rounds): percent, JSON/C and HTML escapes, controls and
spacing removed, NFKC, and runs of hex, base64 (either alphabet, padded or not, at any alignment) and base32
text, so the header quoted in hex is found; one binary layer is decoded, not a binary layer of a binary layer.
Beyond the rule: other encodings (base85, rot13, quoted-printable, compression, look-alike letters, a secret
cut into pieces shorter than a run), which no substring rule can follow.

:meth:`Redactor.scrub` cuts every leak out of a text (``***``) and withholds the whole text
(:data:`WITHHELD`) when only a decoded view leaks, or when the text as written leaks (``json.dumps`` and
``for_people`` write a TAB as backslash and ``t``, the eighth character next to seven a server sent); what it
returns never leaks (it checks). :meth:`Redactor.written` checks the final bytes of a file before it is
written, and :meth:`Redactor.holds_part` judges large input (a results archive) by runs of 16.
``Redactor(text)`` also masks email addresses, for messages and logs. The host facade, the conformance harness
and the connector's results, state, receipts, files and logs all use this one rule.

**Cost.** Each secret is indexed as a set of its fixed-length runs (linear in its length: a 16 kB access token
registers in about 0.15 s of CPU), and a text is scanned by looking up its windows in that set, once for every
secret together.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import html
import json
import logging
import math
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from dsr_framework.text import for_people, without_controls

__all__ = ["FRAGMENT_LENGTH", "MASK", "WITHHELD", "LeakInOutput", "RedactingFilter", "RedactingLogger", "Redactor",
           "mask_email", "redact_strings", "reduced", "secret_forms"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|\\([\\/\"'bfnrt])|\\([0-3][0-7]{2})")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
MIN_SECRET = 4  #: shorter "secrets" would redact ordinary words; schemas require longer ones anyway
FRAGMENT_LENGTH = 8  #: a run this long of a secret (or of one of its forms) counts as leaking it
_HEX_RUN = 2 * FRAGMENT_LENGTH  #: hex spends two digits per byte: a run of eight bytes of the secret
_VERDICTS_KEPT = 4096  #: decoded-leak verdicts remembered (16-byte digests), then forgotten all at once
INPUT_RUN = 16  #: a run this long of a form counts in large input (:meth:`Redactor.holds_part`)
MASK = "***"
TOKENS_PER_SOURCE = 4  #: earlier, still valid tokens kept per token source besides the one it uses now
#: What :meth:`Redactor.scrub` returns for text that hides a secret in a form it cannot cut out.
WITHHELD = "[withheld: the text held a credential]"


class LeakInOutput(ValueError):
    """Text about to be written would hold a secret by the rule (see :meth:`Redactor.written`)."""


def mask_email(text: str) -> str:
    """Mask every email address in ``text``: ``jane.doe@example.com`` becomes ``j***@e***.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", text)


def redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (JSON) with every string, keys included, passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_strings(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_strings(v, redact) for v in value]
    return value


def _fold(text: str) -> str:
    """``text`` lower-cased character by character, so that positions in it are positions in ``text``: each
    character becomes its own lower case where that is one character, and stays as it is otherwise.

    ``str.lower`` differs from that in two places only, both handled in C rather than by a loop over the text:
    ``İ`` (U+0130, the one character whose lower case is two characters, which would shift every span after it)
    and a capital sigma (``str.lower`` writes the final form, U+03C2, at the end of a word, so the same secret
    would fold two ways by what follows it). Beyond lower case, letters that are one letter in another case
    convention fold together: both sigmas to U+03C3, and Turkish dotted capital and dotless small i to ``i`` (a
    server upper-casing in a Turkish locale writes ``i`` as ``İ``). ``tests/test_redact_fold.py`` holds this to
    the character-by-character definition."""
    return "i".join(part.replace("\u03a3", "\u03c3").lower().replace("\u03c2", "\u03c3").replace("\u0131", "i")
                    for part in text.split("\u0130"))


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that only ``raw`` determines, wherever it sits in a longer value.

    Inside ``base64(prefix + raw + suffix)`` the encoding of ``raw`` depends on ``len(prefix) % 3``; for each
    of the three alignments, the characters whose six bits all come from ``raw`` are the same whatever the
    prefix and suffix are. That is how a Basic ``key:secret`` header hides the secret, for any key length.
    """
    cores: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            first = math.ceil(8 * offset / 6)
            last = (8 * (offset + len(raw))) // 6
            cores.add(encoded[first:last])
    return cores


def secret_forms(secret: str) -> frozenset[str]:
    """Every form ``secret`` takes on the wire or in an echo (at least :data:`MIN_SECRET` characters long),
    but hex (see :func:`_hex_form`).

    The secret itself, case-changed, reversed and in NFKC; JSON-escaped (``ensure_ascii`` as ``json.dumps`` writes it);
    URL-encoded as a query or form body writes it (``%2F`` and ``%2f`` alike); and the parts of its base64
    encodings (standard and URL-safe alphabets) that it alone determines, at each alignment (see
    :func:`_base64_cores`).
    """
    if len(secret) < MIN_SECRET:
        return frozenset()
    # lower() and upper() as well: folding "ß" or "İ" changes their length, so a case-changed echo of a secret
    # holding them matches only these forms.
    forms = {secret, secret.lower(), secret.upper(), secret[::-1], json.dumps(secret)[1:-1], quote(secret, safe=""),
             quote_plus(secret), unicodedata.normalize("NFKC", secret)}
    forms |= {_PERCENT.sub(lambda m: m.group(0).lower(), f) for f in forms}
    forms |= _base64_cores(secret.encode("utf-8"))
    return frozenset(f for f in forms if len(f) >= MIN_SECRET)


def _hex_form(secret: str) -> str:
    return secret.encode("utf-8").hex()


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


@dataclass(frozen=True)
class _Matcher:
    """Everything one set of secrets is matched with (never shown: each field holds the secrets or parts of
    them, so the generated ``repr`` prints none of them)."""

    secrets: frozenset[str] = field(repr=False)
    #: every form, folded and whole (for :meth:`Redactor.finds_secret`), with each secret's whole hex form
    whole: tuple[str, ...] = field(repr=False)
    short: tuple[str, ...] = field(repr=False)  #: the folded forms shorter than a run, whole
    runs: frozenset[str] = field(repr=False)  #: every folded run of :data:`FRAGMENT_LENGTH` characters of a form
    hex_runs: frozenset[str] = field(repr=False)  #: every run of :data:`_HEX_RUN` digits of a hex form

    @classmethod
    def of(cls, secrets: frozenset[str]) -> _Matcher:
        """The matcher for ``secrets``. Building it costs time and memory linear in the secrets' length (a set
        of fixed-length windows, looked up by hashing, instead of a regular expression whose compilation grew
        faster than that: a 16 kB access token took seconds)."""
        forms = {_fold(form) for secret in secrets for form in secret_forms(secret)}
        hexes = {_hex_form(s) for s in secrets if len(s) >= FRAGMENT_LENGTH}
        return cls(secrets, tuple(sorted(forms | hexes, key=len, reverse=True)),
                   tuple(f for f in forms if len(f) < FRAGMENT_LENGTH),
                   _all_runs(forms, FRAGMENT_LENGTH), _all_runs(hexes, _HEX_RUN))


_NOTHING = _Matcher(frozenset(), (), (), frozenset(), frozenset())


@dataclass(frozen=True)
class _Token:
    """A rotating secret (an access token) and the monotonic time after which it opens nothing."""

    matcher: _Matcher = field(repr=False)
    expires_at: float


class _Compiled:
    """The matchers in force, published at once so readers never see half of them: one for the lasting
    secrets, and one per rotating secret of each token source (each built once). Immutable once made."""

    __slots__ = ("decoded", "hex_grams", "hex_runs", "lasting", "matchers", "rotating", "run_grams", "runs", "secrets",
                 "short")

    def __init__(self, lasting: _Matcher = _NOTHING,
                 rotating: Mapping[Hashable, tuple[_Token, ...]] | None = None) -> None:
        self.lasting = lasting
        self.rotating: dict[Hashable, tuple[_Token, ...]] = dict(rotating or {})
        self.matchers = (lasting, *(t.matcher for tokens in self.rotating.values() for t in tokens))
        self.secrets = lasting.secrets.union(*(m.secrets for m in self.matchers))
        # One set of windows for every secret: a text is scanned once, whatever the number of secrets.
        self.runs = lasting.runs.union(*(m.runs for m in self.matchers[1:]))
        self.hex_runs = lasting.hex_runs.union(*(m.hex_runs for m in self.matchers[1:]))
        #: every gram of half a run's length in the runs (:func:`_hits` looks for these first)
        self.run_grams = _all_runs(self.runs, FRAGMENT_LENGTH // 2)
        self.hex_grams = _all_runs(self.hex_runs, _HEX_RUN // 2)
        self.short = tuple({f for m in self.matchers for f in m.short})
        #: :meth:`Redactor._decoded_leak`'s verdicts for these secrets, by a digest of the text (never the text,
        #: which may hold personal data): the same texts (ids, messages, the trail) are checked again and again.
        self.decoded: dict[bytes, bool] = {}


def _runs(text: str, length: int) -> set[str]:
    return {text[i:i + length] for i in range(len(text) - length + 1)}


def _all_runs(texts: Iterable[str], length: int) -> frozenset[str]:
    return frozenset(run for text in texts for run in _runs(text, length))


_CHUNK = 1 << 16  #: windows of a text looked up at once (bounds the memory a scan takes)
_HEX_DIGITS = re.compile(f"[0-9a-f]{{{_HEX_RUN},}}")


def _hits(folded: str, runs: frozenset[str], grams: frozenset[str], length: int, first_only: bool) -> set[str]:
    """The windows of ``folded`` of ``length`` characters that are in ``runs``; ``grams`` holds every piece of
    ``length // 2`` characters of the runs.

    Only windows that can be runs are cut out. With ``g = length // 2``, the window starting at ``p`` holds the
    piece starting at the first multiple of ``g`` at or after ``p`` (it starts at most ``g - 1`` later and
    ends within the window, as ``2g - 1 <= length``). So the pieces at multiples of ``g`` are looked up first (a
    ``g``-th of the windows), and only the windows holding one that is in ``grams`` (those starting up to ``g - 1``
    before it) are looked up in turn: no window that is a run is missed. The lookups run in C: a chunk's pieces
    are cut out by a comprehension and intersected with the set."""
    found: set[str] = set()
    step, size = length // 2, len(folded)
    for start in range(0, max(size - step + 1, 0), _CHUNK * step):
        sample = [folded[q:q + step] for q in range(start, min(start + _CHUNK * step, size - step + 1), step)]
        seen = grams.intersection(sample)
        for q in (start + i * step for i, piece in enumerate(sample) if piece in seen) if seen else ():
            found |= runs.intersection([folded[p:p + length] for p in range(max(q - step + 1, 0),
                                                                             min(q, size - length) + 1)])
        if found and first_only:
            break
    return found


def _occurrences(folded: str, words: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for word in words:
        at = folded.find(word)
        while at >= 0:
            spans.append((at, at + len(word)))
            at = folded.find(word, at + 1)
    return spans


def _with_tokens(rotating: Mapping[Hashable, tuple[_Token, ...]], source: Hashable, new: set[str],
                 expires_at: float) -> dict[Hashable, tuple[_Token, ...]]:
    """``rotating`` with ``new`` added for ``source``: expired tokens dropped (but each source's last one, which it
    may still send until it fetches the next), and at most :data:`TOKENS_PER_SOURCE` earlier ones kept for it."""
    now = time.monotonic()
    tokens = {key: kept for key, held in rotating.items()
              if (kept := tuple(t for t in held if t.expires_at > now) or (held[-1:] if key != source else ()))}
    added = tuple(_Token(_Matcher.of(frozenset([s])), expires_at) for s in sorted(new))
    tokens[source] = (*tokens.get(source, ())[-TOKENS_PER_SOURCE:], *added)
    return tokens


def _in_any(text: str, forms: list[str]) -> bool:
    return any(text in form for form in forms)


def _written_forms(text: str) -> set[str]:
    """What ``text`` becomes where it is written, when that differs from ``text``: a JSON string (with and without
    ``ensure_ascii``, ``DEL`` escaped as :func:`~dsr_framework.text.json_for_people` does) and the text shown to a
    person (:func:`~dsr_framework.text.for_people`). Empty for most texts, which none of them changes."""
    if _WRITTEN_AS_IS.fullmatch(text):
        return set()
    return {json.dumps(text)[1:-1].replace("\x7f", "\\u007f"), json.dumps(text, ensure_ascii=False)[1:-1],
            for_people(text)} - {text}


#: What :func:`reduced` could change: an escape, a reference, a percent sign, a control or any non-ASCII character.
_ESCAPED_OR_PADDED = re.compile(r"[\\%&+\x00-\x1f\x7f]|[^\x00-\x7f]")
_WRITTEN_AS_IS = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')  #: text ``json.dumps`` writes unchanged


class Redactor:
    """Finds and hides known secrets by the one rule (see the module docstring); thread-safe.

    Secrets can be added while running (:meth:`register`), for values a connector obtains itself, such as
    OAuth access tokens: those are *rotating*. Each token is kept for as long as it is valid (``expires_at``,
    on :func:`time.monotonic`'s clock), per token ``source``; the token a source registered last is never
    dropped, whatever the other sources do, and at most :data:`TOKENS_PER_SOURCE` earlier ones that have not
    expired are kept with it (a server that hands out a new token on every call cannot make the scan grow
    without end, and an earlier token is one the source no longer sends).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._compiled = _Compiled()
        self.register(*secrets)

    def register(self, *secrets: str, rotating: bool = False, source: Hashable = None,
                 expires_at: float = math.inf) -> None:
        """Also hide ``secrets`` from now on. ``rotating``: short-lived values such as access tokens, kept per
        ``source`` until ``expires_at`` (monotonic seconds)."""
        with self._lock:
            compiled = self._compiled
            new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET} - compiled.secrets
            if not new:
                return
            if not rotating:
                self._compiled = _Compiled(_Matcher.of(compiled.lasting.secrets | new), compiled.rotating)
            else:
                self._compiled = _Compiled(compiled.lasting, _with_tokens(compiled.rotating, source, new, expires_at))

    # -- the rule ----------------------------------------------------------------------------------------

    def leaks(self, text: str) -> bool:
        """True when ``text`` holds a secret by the rule: a whole form, a run of :data:`FRAGMENT_LENGTH`
        characters of one, or either once escapes or hex/base64/base32 runs are decoded."""
        compiled = self._compiled
        return bool(compiled.secrets) and (self._leaks_as_is(compiled, text) or self._decoded_leak(compiled, text))

    def scrub(self, text: str) -> str:
        """``text`` with every leak cut out (``***``), or :data:`WITHHELD` when a leak shows only once its
        escapes are decoded, or once it is written out (:func:`_written_forms`: ``json.dumps`` and
        :func:`~dsr_framework.text.for_people` turn a TAB into backslash and ``t``, which with seven characters of a
        secret a server put after it makes a run); the text returned never leaks. Emails are left as they are."""
        compiled = self._compiled
        if not compiled.secrets:
            return text
        cut = self._cut(compiled, text)
        # Text with nothing cut was looked at whole; text with cuts is looked at again, in case joining
        # what was around a cut (or a secret holding the mask's own characters) made a new run.
        if not self._decoded_leak(compiled, cut) and (cut == text or not self._leaks_as_is(compiled, cut)) and \
                not any(self.leaks(form) for form in _written_forms(cut)):
            return cut
        return WITHHELD if not self._leaks_as_is(compiled, WITHHELD) else MASK

    def __call__(self, text: str) -> str:
        """:meth:`scrub`, and emails masked: for logs and messages."""
        return mask_email(self.scrub(text))

    def scrub_json(self, value: Any) -> Any:
        """``value`` (JSON) with every string in it, keys included, scrubbed."""
        return redact_strings(value, self.scrub)

    def finds_secret(self, text: str) -> bool:
        """True when ``text`` holds a whole form of a secret. Not the rule for outgoing text (that is
        :meth:`leaks`): for judging input, such as personal data, where a whole credential means the
        input is not what it claims to be, while a chance 8-character run in megabytes of data does not."""
        compiled = self._compiled
        if not compiled.secrets:
            return False
        folded = _fold(text)
        return any(form in folded for m in compiled.matchers for form in m.whole)

    def holds_part(self, text: str) -> bool:
        """True when ``text`` holds a whole form, or a run of :data:`INPUT_RUN` (16) characters of one, as it is
        or with its escapes decoded and invisible characters dropped (no binary decoding). For large input, such
        as a results archive handed on as it came: decoding every binary view of gigabytes would take too long,
        and in gigabytes of data (push tokens, ids: random-looking text) an 8-character run of some form turns up
        by chance (about once in 100 MB of random base64), while 16 never does. A secret split into pieces is
        found down to pieces of 16 characters."""
        compiled = self._compiled
        if not compiled.secrets:
            return False
        forms = [form for m in compiled.matchers for form in m.whole]
        # Escapes and invisible padding are undone too (:func:`reduced`, cheap: C code over the text): a credential
        # written as JSON \\u escapes, percent or HTML references is the credential to whoever reads the file.
        views = (text, reduced(text)) if _ESCAPED_OR_PADDED.search(text) else (text,)
        return any(Redactor._holds_run(compiled, _fold(view), forms) for view in views)

    @staticmethod
    def _holds_run(compiled: _Compiled, folded: str, forms: list[str]) -> bool:
        if any(form in folded for form in forms if len(form) <= INPUT_RUN):
            return True
        # The 8-character runs found are rare; each is confirmed by the 16 characters that start with it.
        windows = {folded[start:start + INPUT_RUN] for start, _ in Redactor._spans(compiled, folded)}
        return any(_in_any(window, forms) for window in windows if len(window) == INPUT_RUN)

    def written(self, data: bytes, what: str) -> bytes:
        """``data``, UTF-8 text about to be written to a file, unchanged once the rule has looked at it as it
        will be read: the check runs on the final bytes, after every encoding (``json.dumps`` turns a TAB into
        backslash and ``t``, which with seven characters of a secret a server put after it makes a run).
        :class:`LeakInOutput` if it leaks."""
        if self.leaks(data.decode("utf-8", "replace")):
            raise LeakInOutput(f"{what} would hold part of a credential, so it is not written")
        return data

    # -- how ---------------------------------------------------------------------------------------------

    @staticmethod
    def _leaks_as_is(compiled: _Compiled, text: str) -> bool:
        folded = _fold(text)
        return any(form in folded for form in compiled.short) or bool(Redactor._spans(compiled, folded, True))

    @staticmethod
    def _decoded_leak(compiled: _Compiled, text: str) -> bool:
        """True when a decoding of ``text`` leaks: escapes (percent, JSON, HTML; two rounds), and hex, base64 or
        base32 runs, alone or under or over one layer of escapes (see :data:`_DECODERS`)."""
        if not _may_be_encoded(text):
            return False
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        verdict = compiled.decoded.get(key)
        if verdict is None:
            verdict = Redactor._any_view_leaks(compiled, text)
            if len(compiled.decoded) >= _VERDICTS_KEPT:
                compiled.decoded.clear()
            compiled.decoded[key] = verdict
        return verdict

    @staticmethod
    def _any_view_leaks(compiled: _Compiled, text: str) -> bool:
        seen, views = {text}, [(text, True)]
        for _ in range(2):
            views = _decoded_views(views, seen)
            if any(Redactor._leaks_as_is(compiled, view) for view, _ in views):
                return True
        return False

    @staticmethod
    def _cut(compiled: _Compiled, text: str) -> str:
        """``text`` with every span covered by a whole short form or a run of a form replaced by one mask (the
        spans are found on the original text together, so cutting one cannot break another apart)."""
        folded = _fold(text)
        spans = sorted(Redactor._spans(compiled, folded) + _occurrences(folded, compiled.short))
        out: list[str] = []
        last = 0
        for start, end in spans:
            if out and start <= last:  # overlaps or touches the span just cut: extend it
                last = max(last, end)
                continue
            out += [text[last:start], MASK]
            last = end
        return "".join(out) + text[last:] if out else text

    @staticmethod
    def _spans(compiled: _Compiled, folded: str, first_only: bool = False) -> list[tuple[int, int]]:
        """The spans of the (folded) text covered by a run of a form, or by 16 digits of a hex form."""
        if len(folded) < FRAGMENT_LENGTH or not compiled.runs:
            return []
        found = _hits(folded, compiled.runs, compiled.run_grams, FRAGMENT_LENGTH, first_only)
        if found and first_only:
            return [(0, 0)]
        if compiled.hex_runs:
            for digits in _HEX_DIGITS.finditer(folded):
                found |= _hits(digits.group(), compiled.hex_runs, compiled.hex_grams, _HEX_RUN, first_only)
                if found and first_only:
                    return [(0, 0)]
        return _occurrences(folded, found)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._compiled.secrets)} hidden values>)"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record passing through it: message, arguments and traceback text.

    Attach it to loggers whose code you do not control (HTTP and OAuth libraries log request bodies and
    tokens at DEBUG); a filter on a logger applies to the records created on that very logger.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is shown as its template only
            message = str(record.msg)
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.scrub(record.stack_info)
        return True


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that formats each message eagerly and redacts it before any handler sees it.

    Filters on a parent logger don't apply to records created by its children, so connectors log through
    this adapter instead of relying on a filter somewhere up the tree.
    """

    def __init__(self, logger: logging.Logger, redactor: Redactor) -> None:
        super().__init__(logger, {})
        self.redactor = redactor

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        """Log ``msg % args`` redacted; a traceback (``exc_info``, as ``logger.exception`` passes it) is
        formatted here and redacted with the message, since no handler's formatter would redact it."""
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            if exc_info:
                if isinstance(exc_info, BaseException):
                    exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
                elif not isinstance(exc_info, tuple):
                    exc_info = sys.exc_info()
                if exc_info[0] is not None:
                    text += "\n" + logging.Formatter().formatException(exc_info)
            self.logger.log(level, self.redactor(text), **kwargs)

"""How the redaction rule matches secrets (:mod:`dsr_framework.redact`): the forms a secret takes, case folded
character by character, and every fixed-length run of them indexed in sets that a text's windows are looked up
in, for every secret at once.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import unicodedata
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

__all__ = ["FRAGMENT_LENGTH", "MIN_SECRET", "secret_forms"]

_PERCENT = re.compile(r"%[0-9A-F]{2}")
MIN_SECRET = 4  #: shorter "secrets" would redact ordinary words; schemas require longer ones anyway
FRAGMENT_LENGTH = 8  #: a run this long of a secret (or of one of its forms) counts as leaking it
_HEX_RUN = 2 * FRAGMENT_LENGTH  #: hex spends two digits per byte: a run of eight bytes of the secret
TOKENS_PER_SOURCE = 4  #: earlier, still valid tokens kept per token source besides the one it uses now


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



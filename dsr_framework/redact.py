"""Secrets and personal data kept out of everything that leaves a connector: results, state, receipts, files,
logs, the terminal.

**The rule** (:meth:`Redactor.leaks`, the only one for outgoing text). A text leaks a secret when it holds,
ignoring case, any run of :data:`FRAGMENT_LENGTH` (8) characters of one of the secret's forms (or a whole form,
for a secret shorter than that), or does so once its percent-, JSON- or HTML-escapes are decoded (a server may
escape every character of what it echoes). A secret leaves a process in more forms than its own text, and a
hostile server can echo any of them back, whole or cut short, or lower-cased (in a host name). The forms
(:func:`secret_forms`): the secret itself; JSON-escaped; URL-encoded as a query or form body writes it; the
base64 characters it alone determines at each of the three alignments (that is how a Basic ``key:secret``
header carries it, for any key length; standard and URL-safe alphabets); reversed; and hex, where a run means
eight characters of the secret (16 hex digits, so a SHA-256 digest cannot match by chance).

:meth:`Redactor.scrub` cuts every leak out of a text (``***``) and withholds the whole text
(:data:`WITHHELD`) when only a decoded view leaks; what it returns never leaks (it checks). ``Redactor(text)``
also masks email addresses, for messages and logs. The host facade, the conformance harness and the
connector's results, state, receipts and logs all use this one rule.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from dsr_framework.text import without_controls

__all__ = ["FRAGMENT_LENGTH", "MASK", "WITHHELD", "RedactingFilter", "RedactingLogger", "Redactor", "mask_email",
           "redact_strings", "secret_forms"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|\\([\\/\"'bfnrt])")
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
MIN_SECRET = 4  #: shorter "secrets" would redact ordinary words; schemas require longer ones anyway
FRAGMENT_LENGTH = 8  #: a run this long of a secret (or of one of its forms) counts as leaking it
_HEX_RUN = 2 * FRAGMENT_LENGTH  #: hex spends two digits per byte: a run of eight bytes of the secret
MASK = "***"
ROTATING_KEPT = 4  #: rotating secrets (access tokens) kept, most recent first
#: What :meth:`Redactor.scrub` returns for text that hides a secret in a form it cannot cut out.
WITHHELD = "[withheld: the text held a credential]"


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
    """``text`` lower-cased character by character, so that positions in it are positions in ``text``
    (``str.lower`` turns ``İ`` into two characters, which would shift every span after it)."""
    folded = text.lower()
    if len(folded) == len(text):
        return folded
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


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
    """``text`` with JSON and C-style escapes decoded, left to right as a JSON parser reads them (``\\\\`` is one
    backslash, so an echo escaped twice, JSON inside JSON, decodes once per round)."""
    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        return chr(int(code, 16)) if code else _SIMPLE_ESCAPES.get(match.group(3), match.group(3))

    decoded = _ESCAPE.sub(one, text)
    # A server may escape a non-ASCII character as a UTF-16 surrogate pair: join the halves again.
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _unspaced(text: str) -> str:
    """``text`` with the separator taken out of runs of single characters spaced apart (``a b c d e f g h``,
    ``a-b-c-d-e-f-g-h``: every second character is the same separator) and of hex dumps (``5a:71:38:76``)."""
    text = _SPACED.sub(lambda m: m.group()[::2], text)
    return _HEX_PAIRS.sub(lambda m: m.group().replace(m.group("hexsep"), ""), text)


def _compatible(text: str) -> str:
    """``text`` in NFKC: fullwidth and other compatibility forms read as the characters they look like."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


_SPACED = re.compile(r".(?P<sep>[\s.,;:|·_-])(?:.(?P=sep)){6,}.")
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?P<hexsep>[\s:.-])(?:[0-9A-Fa-f]{2}(?P=hexsep)){6,}[0-9A-Fa-f]{2}")
#: What a decoder could change in an ASCII text: an escape, a control character, a spaced-out run, a hex dump.
_ENCODED = re.compile(rf"[%\\&\x00-\x1f\x7f]|{_SPACED.pattern}|{_HEX_PAIRS.pattern}")


def _may_be_encoded(text: str) -> bool:
    """True when one of :data:`_DECODERS` could change ``text`` (most texts are looked at once only)."""
    return not text.isascii() or _ENCODED.search(text) is not None


#: The decodings under which a text is looked at again: a server may escape every character of an echo, put an
#: invisible character between every two (which a terminal would not show), space them out, or write them in
#: fullwidth forms.
_DECODERS: tuple[Callable[[str], str], ...] = (unquote_plus, _unescape, html.unescape, without_controls, _unspaced,
                                               _compatible)


@dataclass(frozen=True)
class _Matcher:
    """Everything one set of secrets is matched with."""

    secrets: frozenset[str]
    whole: re.Pattern[str] | None  #: every form, whole (for :meth:`Redactor.finds_secret`)
    short: re.Pattern[str] | None  #: the forms shorter than a run, whole (a run of a longer form finds it)
    #: Where a run of a form starts in a folded text: 8 characters of a form, or 16 digits of a hex form.
    runs: re.Pattern[str] | None

    @classmethod
    def of(cls, secrets: frozenset[str]) -> _Matcher:
        forms = {form for secret in secrets for form in secret_forms(secret)}
        short = {form for form in forms if len(form) < FRAGMENT_LENGTH}
        runs = _all_runs(forms, secrets)
        # A lookahead finds overlapping runs; a trie lets the regex engine (in C) branch by character instead
        # of trying a thousand alternatives at every position: about five times faster than a Python loop.
        # Whole forms include each secret's whole hex form (16 digits and more: no digest matches it by chance).
        whole = forms | {_hex_form(s) for s in secrets if len(s) >= FRAGMENT_LENGTH}
        return cls(secrets, _any_of(whole), _any_of(short), re.compile(f"(?=({_trie(runs)}))") if runs else None)


_NOTHING = _Matcher(frozenset(), None, None, None)


class _Compiled:
    """The matchers in force, published at once so readers never see half of them: one for the lasting
    secrets, and one per rotating secret (each compiled once: a token is a long secret, and compiling every
    form of it takes a good part of a second). Immutable once made."""

    __slots__ = ("lasting", "matchers", "rotating", "secrets")

    def __init__(self, lasting: _Matcher = _NOTHING, rotating: tuple[_Matcher, ...] = ()) -> None:
        self.lasting, self.rotating = lasting, rotating
        self.matchers = (lasting, *rotating)
        self.secrets = lasting.secrets.union(*(m.secrets for m in rotating))


def _any_of(forms: set[str]) -> re.Pattern[str] | None:
    # Case-insensitive: URL parsing lower-cases hosts, so a secret a server puts in one comes back so.
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)),
                      re.IGNORECASE) if forms else None


def _runs(text: str, length: int) -> set[str]:
    return {text[i:i + length] for i in range(len(text) - length + 1)}


def _all_runs(forms: set[str], secrets: frozenset[str]) -> set[str]:
    """The folded runs that count as leaking: 8 characters of a form, 16 digits of a secret's hex form."""
    runs = {run for form in forms for run in _runs(_fold(form), FRAGMENT_LENGTH)}
    return runs | {run for s in secrets if len(s) >= FRAGMENT_LENGTH for run in _runs(_hex_form(s), _HEX_RUN)}


def _trie(words: Iterable[str]) -> str:
    """A regular expression matching exactly ``words``, as a trie; the longest word first where one is a
    prefix of another."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return pattern(root)


class Redactor:
    """Finds and hides known secrets by the one rule (see the module docstring); thread-safe.

    Secrets can be added while running (:meth:`register`), for values a connector obtains itself, such as
    OAuth access tokens: those are *rotating*, and only the :data:`ROTATING_KEPT` most recent are kept (a
    worker running for weeks fetches a token every few hours; an expired one opens nothing, and keeping every
    one would make each new registration, and each scan, slower without end).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._compiled = _Compiled()
        self.register(*secrets)

    def register(self, *secrets: str, rotating: bool = False) -> None:
        """Also hide ``secrets`` from now on (``rotating``: short-lived values such as access tokens)."""
        with self._lock:
            compiled = self._compiled
            new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET} - compiled.secrets
            if not new:
                return
            if rotating:
                added = tuple(_Matcher.of(frozenset([s])) for s in sorted(new))
                self._compiled = _Compiled(compiled.lasting, (*compiled.rotating, *added)[-ROTATING_KEPT:])
            else:
                self._compiled = _Compiled(_Matcher.of(compiled.lasting.secrets | new), compiled.rotating)

    # -- the rule ----------------------------------------------------------------------------------------

    def leaks(self, text: str) -> bool:
        """True when ``text`` holds a secret by the rule: a whole form, a run of :data:`FRAGMENT_LENGTH`
        characters of one, or either once escapes are decoded."""
        compiled = self._compiled
        return bool(compiled.secrets) and (self._leaks_as_is(compiled, text) or self._decoded_leak(compiled, text))

    def scrub(self, text: str) -> str:
        """``text`` with every leak cut out (``***``), or :data:`WITHHELD` when a leak shows only once its
        escapes are decoded; the text returned never leaks. Emails are left as they are."""
        compiled = self._compiled
        if not compiled.secrets:
            return text
        cut = self._cut(compiled, text)
        # Text with nothing cut was looked at whole; text with cuts is looked at again, in case joining
        # what was around a cut (or a secret holding the mask's own characters) made a new run.
        if not self._decoded_leak(compiled, cut) and (cut == text or not self._leaks_as_is(compiled, cut)):
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
        :meth:`leaks`): for judging input, such as a results archive, where a whole credential means the
        input is not what it claims to be, while a chance 8-character run in megabytes of data does not."""
        return any(m.whole is not None and m.whole.search(text) is not None for m in self._compiled.matchers)

    # -- how ---------------------------------------------------------------------------------------------

    @staticmethod
    def _leaks_as_is(compiled: _Compiled, text: str) -> bool:
        return any(m.short is not None and m.short.search(text) is not None for m in compiled.matchers) or \
            bool(Redactor._spans(compiled, text, first_only=True))

    @staticmethod
    def _decoded_leak(compiled: _Compiled, text: str) -> bool:
        """True when a decoding of ``text`` (percent, JSON or HTML escapes; two rounds) leaks."""
        if not _may_be_encoded(text):
            return False
        seen, views = {text}, [text]
        for _ in range(2):
            views = [d for view in views for decode in _DECODERS if (d := decode(view)) not in seen]
            seen.update(views)
            if any(Redactor._leaks_as_is(compiled, view) for view in views):
                return True
        return False

    @staticmethod
    def _cut(compiled: _Compiled, text: str) -> str:
        """``text`` with every span covered by a whole short form or a run of a form replaced by one mask (the
        spans are found on the original text together, so cutting one cannot break another apart)."""
        spans = sorted(Redactor._spans(compiled, text) + [
            found.span() for m in compiled.matchers if m.short is not None for found in m.short.finditer(text)])
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
    def _spans(compiled: _Compiled, text: str, first_only: bool = False) -> list[tuple[int, int]]:
        """The spans of ``text`` where a run of a form starts and ends."""
        patterns = [m.runs for m in compiled.matchers if m.runs is not None]
        if not patterns or len(text) < FRAGMENT_LENGTH:
            return []
        folded = _fold(text)
        spans: list[tuple[int, int]] = []
        for runs in patterns:
            for match in runs.finditer(folded):
                spans.append((match.start(), match.start() + len(match.group(1))))
                if first_only:
                    return spans
        return spans

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

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

import hashlib
import json
import logging
import math
import re
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from dsr_framework.secret_matching import (
    _HEX_DIGITS,
    _HEX_RUN,
    FRAGMENT_LENGTH,
    MIN_SECRET,
    _Compiled,
    _fold,
    _hits,
    _in_any,
    _Matcher,
    _occurrences,
    _with_tokens,
    secret_forms,
)
from dsr_framework.secret_views import _ESCAPED_OR_PADDED, _decoded_views, _may_be_encoded, reduced
from dsr_framework.text import for_people

__all__ = ["FRAGMENT_LENGTH", "MASK", "MIN_SECRET", "WITHHELD", "LeakInOutput", "RedactingFilter", "RedactingLogger",
           "Redactor", "mask_email", "redact_strings", "reduced", "secret_forms"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_VERDICTS_KEPT = 4096  #: decoded-leak verdicts remembered (16-byte digests), then forgotten all at once
INPUT_RUN = 16  #: a run this long of a form counts in large input (:meth:`Redactor.holds_part`)
MASK = "***"
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



def _written_forms(text: str) -> set[str]:
    """What ``text`` becomes where it is written, when that differs from ``text``: a JSON string (with and without
    ``ensure_ascii``, ``DEL`` escaped as :func:`~dsr_framework.text.json_for_people` does) and the text shown to a
    person (:func:`~dsr_framework.text.for_people`). Empty for most texts, which none of them changes."""
    if _WRITTEN_AS_IS.fullmatch(text):
        return set()
    return {json.dumps(text)[1:-1].replace("\x7f", "\\u007f"), json.dumps(text, ensure_ascii=False)[1:-1],
            for_people(text)} - {text}



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

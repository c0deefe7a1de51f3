"""Secrets and personal data kept out of everything that leaves a connector: logs, messages, results, files.

A secret leaves a process in more forms than its own text. On the wire it is base64 inside a Basic
``key:secret`` header (where its encoding depends on the key's length), URL-encoded in a form body, escaped in
JSON, hex-encoded in a debug dump; a hostile server can echo any of those back, whole or cut short, or
lower-cased (in a host name).
Matching ignores case. :func:`secret_forms` lists the forms;
:class:`Redactor` hides them (and masks emails); :meth:`Redactor.scrub` also hides any run of eight or more
characters of a secret or its forms, for text that came from a server and may hold a fragment of one.

The host facade and the conformance harness use the same forms to decide whether a result carries a secret.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = ["FRAGMENT_LENGTH", "WITHHELD", "RedactingFilter", "RedactingLogger", "Redactor", "mask_email",
           "redact_strings", "secret_forms"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
MIN_SECRET = 4  #: shorter "secrets" would redact ordinary words; schemas require longer ones anyway
FRAGMENT_LENGTH = 8  #: a run this long of a secret (or of one of its forms) counts as leaking it
MASK = "***"
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
    """Every form ``secret`` takes on the wire (at least :data:`MIN_SECRET` characters long).

    The secret itself; JSON-escaped (``ensure_ascii`` as ``json.dumps`` writes it); URL-encoded as a query or
    form body writes it (``%2F`` and ``%2f`` alike); its UTF-8 bytes in hex (matching ignores case, so upper
    case too); and the parts of its base64 encodings (standard and URL-safe alphabets) that it alone
    determines, at each alignment (see :func:`_base64_cores`).
    """
    if len(secret) < MIN_SECRET:
        return frozenset()
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
    forms |= {_PERCENT.sub(lambda m: m.group(0).lower(), f) for f in forms}
    forms.add(secret.encode("utf-8").hex())
    forms |= _base64_cores(secret.encode("utf-8"))
    return frozenset(f for f in forms if len(f) >= MIN_SECRET)


def _fragments(form: str) -> set[str]:
    if len(form) <= FRAGMENT_LENGTH:
        return {form}
    return {form[i:i + FRAGMENT_LENGTH] for i in range(len(form) - FRAGMENT_LENGTH + 1)}


class Redactor:
    """Hides known secrets in every form (:func:`secret_forms`) and masks emails; thread-safe.

    Secrets can be added while running (:meth:`register`), for values a connector obtains itself, such as
    OAuth access tokens.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._fragments: frozenset[str] = frozenset()
        self.register(*secrets)

    def register(self, *secrets: str) -> None:
        """Also hide ``secrets`` from now on."""
        new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET} - self._secrets
        if not new:
            return
        with self._lock:
            known = self._secrets | new
            forms = {form for secret in known for form in secret_forms(secret)}
            # Case-insensitive: URL parsing lower-cases hosts, so a secret a server puts in one comes back so.
            pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)
            fragments = frozenset(piece.lower() for form in forms for piece in _fragments(form))
            self._secrets, self._pattern, self._fragments = known, pattern, fragments

    def finds_secret(self, text: str) -> bool:
        """True when ``text`` contains a hidden value in any of its forms (email addresses don't count)."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None

    def finds_fragment(self, text: str) -> bool:
        """True when ``text`` contains a run of :data:`FRAGMENT_LENGTH` characters of a secret or its forms."""
        return bool(self._fragment_spans(text))

    def hide(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***`` (personal data left as it is)."""
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def __call__(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***`` and emails masked: for logs and
        messages."""
        return mask_email(self.hide(text))

    def scrub(self, text: str) -> str:
        """Like :meth:`hide`, and also hides any :data:`FRAGMENT_LENGTH`-character run of a secret or its forms:
        for text a server sent (an error message, a header, a URL, a results file), which may echo part of one."""
        text = self.hide(text)
        out, last = [], 0
        for start, end in self._fragment_spans(text):
            out.append(text[last:start])
            out.append(MASK)
            last = end
        out.append(text[last:])
        cleaned = "".join(out)
        decoded = unquote_plus(cleaned)  # a server may percent-encode every character of what it echoes
        if decoded != cleaned and (self.finds_secret(decoded) or self.finds_fragment(decoded)):
            return WITHHELD
        return cleaned

    def _fragment_spans(self, text: str) -> list[tuple[int, int]]:
        fragments = self._fragments
        if not fragments or len(text) < FRAGMENT_LENGTH:
            return []
        folded = text.lower()
        spans: list[tuple[int, int]] = []
        for i in range(len(folded) - FRAGMENT_LENGTH + 1):
            if folded[i:i + FRAGMENT_LENGTH] in fragments:
                if spans and i <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], i + FRAGMENT_LENGTH)
                else:
                    spans.append((i, i + FRAGMENT_LENGTH))
        return spans

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} hidden values>)"


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
        record.msg, record.args = mask_email(self.redactor.scrub(message)), None
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

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, self.redactor(text), **kwargs)

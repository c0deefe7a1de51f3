"""Redaction of secrets and personal data in text that leaves a connector (logs, messages, results)."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable

__all__ = ["RedactingFilter", "Redactor", "mask_email"]

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-])[\w.-]*\.([A-Za-z]{2,})\b")
_MIN_SECRET = 4  # shorter "secrets" would redact ordinary words; schemas require longer ones anyway


def mask_email(text: str) -> str:
    """Mask every email address in ``text``: ``jane.doe@example.com`` becomes ``j***@e***.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***.{m.group(3)}", text)


class Redactor:
    """Replaces known secret values (and their Basic-auth / base64 forms) with ``***``, and masks emails."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = frozenset(s for s in secrets if len(s) >= _MIN_SECRET)
        forms = set(self._secrets)
        forms.update(base64.b64encode(s.encode()).decode().rstrip("=") for s in self._secrets)
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in sorted(forms, key=len, reverse=True))) if forms else None
        )

    def add(self, *secrets: str) -> Redactor:
        """A new redactor that also hides ``secrets``."""
        return Redactor(self._secrets | set(secrets))

    def finds_secret(self, text: str) -> bool:
        """True when ``text`` contains one of the hidden values (email addresses don't count)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        return mask_email(text)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} hidden values>)"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record passing through it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
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

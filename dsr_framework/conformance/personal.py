"""The personal data of the people a check involves, found in text in the forms a connector might write it.

Email addresses and other values (names, addresses) are found as written, URL-encoded (``pat.doe%40example.com``),
JSON-escaped, hex-encoded or inside base64, in any case: the forms :func:`dsr_framework.redact.secret_forms`
lists. Phone numbers are found by their digits, whatever separates them (``+1 415-555-0134``, ``(415)
5550134``, ``4155550134``): the last nine digits (all of them when there are fewer) in a run of digits once
spaces, dots, dashes, slashes and brackets between digits are dropped. A masked email (``p***@e***.com``) is
not the email.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

from dsr_framework.redact import Redactor

__all__ = ["PersonalData", "is_phone"]

_PHONE_SHAPE = re.compile(r"^\+?[0-9(][0-9 ().\-/]*[0-9]$")
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s().\-/]+(?=\d)")
_PHONE_CATEGORIES = ("phone", "mobile")
MIN_PHONE_DIGITS = 7
MIN_VALUE = 4  #: shorter values (initials) would be found in ordinary words


def is_phone(value: str) -> bool:
    """True for a value shaped like a phone number, with at least seven digits."""
    return bool(_PHONE_SHAPE.match(value.strip())) and sum(c.isdigit() for c in value) >= MIN_PHONE_DIGITS


def _digits(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    return digits[-9:]


class PersonalData:
    """Email addresses, phone numbers and other personal values, found in text in any usual form."""

    def __init__(self, emails: Iterable[str] = (), phones: Iterable[str] = (), others: Iterable[str] = ()) -> None:
        self.emails = sorted({e for e in emails if len(e) >= MIN_VALUE})
        self.phones = sorted({_digits(p) for p in phones if is_phone(p)})
        self.others = sorted({o for o in others if len(o.strip()) >= MIN_VALUE})
        self._emails = Redactor(self.emails)
        self._others = Redactor(self.others)

    @classmethod
    def of(cls, subjects: Iterable[Mapping[str, str]], values: Iterable[str] = ()) -> PersonalData:
        """The personal data in ``subjects`` (their emails and phone numbers) and in ``values`` (names, phone
        numbers, addresses the target declares)."""
        emails: list[str] = []
        phones: list[str] = []
        others: list[str] = []
        for subject in subjects:
            for category, value in subject.items():
                if "@" in value:
                    emails.append(value)
                elif any(word in category for word in _PHONE_CATEGORIES) and is_phone(value):
                    phones.append(value)
        for value in values:
            (emails if "@" in value else phones if is_phone(value) else others).append(value)
        return cls(emails, phones, others)

    def __bool__(self) -> bool:
        return bool(self.emails or self.phones or self.others)

    def found_in(self, text: str) -> str | None:
        """What kind of personal data ``text`` holds (for a message that shows none of it), or None."""
        if self._emails.finds_secret(text):
            return "an unmasked email address"
        if self.phones:
            joined = _BETWEEN_DIGITS.sub("", unquote_plus(text) if "%" in text or "+" in text else text)
            if any(phone in joined for phone in self.phones):
                return "a phone number"
        if self._others.finds_secret(text):
            return "personal data (a name or another value the target declares)"
        return None

    def __repr__(self) -> str:  # personal data: never in a repr
        return f"PersonalData(<{len(self.emails)} emails, {len(self.phones)} phones, {len(self.others)} others>)"

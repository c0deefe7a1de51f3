"""What the command line accepts as a subject identifier, and where mParticle's exact matching will likely miss.

Every value first meets the framework's identity rule (:func:`dsr_framework.text.identity_problem`: no control or
invisible formatting character, no whitespace at either end), the rule the request schema states; then the
option's own format, the request schema's (:mod:`.request_rules`), matched whole.

mParticle documents no normalisation of identity values: it matches them exactly as they were stored. A value
that is valid but written differently from the stored one names nobody, and an erasure verified by searching
for it would be "verified" while the profile remains. :func:`matching_warnings` says where that is likely (an
email with upper-case letters, a phone number with spaces or punctuation); the value is sent unchanged, since
it may be exactly what mParticle holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from connector_mparticle.cli.request_rules import EMAIL, PHONE, REQUEST_ID
from dsr_framework.text import identity_problem

__all__ = ["check_email", "check_mpid", "check_phone", "check_request_id", "check_value", "matching_warnings"]

_PHONE_PUNCTUATION = re.compile(r"(?!^\+)[^0-9]")


def check_value(value: str) -> str | None:
    """Why ``value`` cannot be an identifier value at all, or None."""
    if not value:
        return "must not be empty"
    return identity_problem(value)


def check_email(value: str) -> str | None:
    if (problem := check_value(value)) is not None:
        return problem
    if EMAIL.accepts(value):  # the request schema's rule, said in words below
        return None
    return ("is not an email address: it needs one @, a domain with a dot after it and no spaces "
            "(like jane@example.com)")


def check_phone(value: str) -> str | None:
    if (problem := check_value(value)) is not None:
        return problem
    if PHONE.accepts(value):
        return None
    return "is not a phone number: use digits, with spaces, + - ( ) or . if you like (like +1 800 555 1111)"


def check_mpid(value: str) -> str | None:
    digits = value.removeprefix("-")
    return None if digits.isdigit() and digits.isascii() and len(digits) <= 19 and int(value) != 0 else (
        "is not an mParticle ID: a non-zero whole number (like 8675309123456789)")


def check_request_id(value: str) -> str | None:
    if REQUEST_ID.accepts(value):
        return None
    return (f"use up to {REQUEST_ID.max_length} letters, digits and . _ : @ - starting with a letter or digit "
            "(like TICKET-1042)")


def matching_warnings(identities: Mapping[str, str]) -> list[str]:
    """A warning for each identifier mParticle's exact matching will likely miss (see the module docstring).
    Warnings name the identifier, never its value."""
    warnings = []
    email = identities.get("email")
    if email is not None and email != email.lower():
        warnings.append("the email address has upper-case letters; mParticle matches identities exactly as "
                        "stored (usually in lower case), so if it holds this address in lower case the request "
                        "will not find it. It is sent as given.")
    for name in sorted(identities):
        value = identities[name]
        if ("phone" in name or name == "mobile_number") and _PHONE_PUNCTUATION.search(value):
            warnings.append(f"the {name} has spaces or punctuation; mParticle matches identities exactly as "
                            "stored, so if it holds the number as digits only (with a leading +, as E.164 writes "
                            "it) the request will not find it. It is sent as given.")
    return warnings

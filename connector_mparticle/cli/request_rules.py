"""The rules a request must keep, as the command line applies them: read from the framework's request schema
(``dsr_framework/schemas/request.schema.json``), so the command line and the host cannot disagree.

A schema pattern is anchored (``^…$``) and jsonschema searches with it, where ``$`` also matches before a final
newline; here each is matched whole (``fullmatch``), so a trailing newline is refused as the schema's ``not``
clauses refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsr_framework.validation import framework_schema

__all__ = ["CATEGORY", "EMAIL", "KNOWN_CATEGORIES", "PHONE", "REGULATIONS", "REQUEST_ID", "REQUEST_TYPES", "Rule"]


@dataclass(frozen=True)
class Rule:
    """A string rule of the schema: its pattern (matched whole) and its length bounds."""

    pattern: re.Pattern[str]
    min_length: int
    max_length: int | None

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> Rule:
        text = str(node["pattern"]).removeprefix("^").removesuffix("$")
        return cls(re.compile(text), int(node.get("minLength", 0)), node.get("maxLength"))

    def accepts(self, value: str) -> bool:
        fits = self.min_length <= len(value) and (self.max_length is None or len(value) <= self.max_length)
        return fits and self.pattern.fullmatch(value) is not None


_SCHEMA = framework_schema("request")
_PROPERTIES: Mapping[str, Any] = _SCHEMA["properties"]
_IDENTITIES: Mapping[str, Any] = _PROPERTIES["identities"]

#: The request types and the regulations a request may carry.
REQUEST_TYPES: tuple[str, ...] = tuple(_PROPERTIES["type"]["enum"])
REGULATIONS: tuple[str, ...] = tuple(_PROPERTIES["regulation"]["enum"])
#: A request id (the host's own; the connector derives its remote ids from it).
REQUEST_ID = Rule.of(_PROPERTIES["request_id"])
#: An identifier category's name (``email``, ``other3``, ``app_user_id``).
CATEGORY = Rule.of(_IDENTITIES["propertyNames"])
#: The identifier categories the schema describes, in its order (device ids named as OpenDSR names them).
KNOWN_CATEGORIES: tuple[str, ...] = tuple(_IDENTITIES["properties"])
#: An email address and a phone number, as the schema's formats for the ``email`` and ``phone`` categories.
EMAIL = Rule.of(_IDENTITIES["properties"]["email"])
PHONE = Rule.of(_IDENTITIES["properties"]["phone"])

"""Which settings of a credentials schema look like secrets, and whether the schema flags them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dsr_framework.validation import flagged_secret, schema_nodes

__all__ = ["looks_secret", "secret_looking_fields"]

_SECRET_WORDS = {"secret", "password", "passwd", "pwd", "passphrase", "token", "key", "apikey", "credential",
                 "credentials", "private"}
#: A last word that says the field is about a secret but is not one (token_url, key_id, secret_name...).
_NOT_SECRET_ENDINGS = {"url", "uri", "id", "type", "path", "file", "name", "ttl", "seconds", "length", "endpoint",
                       "host", "hint", "header", "format", "field", "kind", "prefix", "version"}


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[_\-.\s]+", spaced.lower()) if w]


def looks_secret(name: str) -> bool:
    """True for names like ``api_key``, ``client_secret``, ``password``; False for ``token_url``, ``key_id``."""
    words = _words(name)
    return bool(words) and bool(_SECRET_WORDS & set(words)) and words[-1] not in _NOT_SECRET_ENDINGS


def _is_string(chain: list[Any]) -> bool:
    types = [node.get("type") for node in chain if isinstance(node, Mapping) and "type" in node]
    return not types or any(t == "string" or (isinstance(t, list) and "string" in t) for t in types)


def secret_looking_fields(schema: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(JSON path, flagged?) for every string property whose name looks like a secret, anywhere in ``schema``.

    ``$ref`` is followed with ``referencing`` (:func:`dsr_framework.validation.schema_nodes`); a property that
    appears in several branches must be flagged in each.
    """
    found: dict[str, bool] = {}
    for path, chain in schema_nodes(schema):
        if not path or path[-1] == "*" or not looks_secret(path[-1]) or not _is_string(chain):
            continue
        where = "$." + ".".join(p if p != "*" else "[]" for p in path)
        found[where] = found.get(where, True) and flagged_secret(chain)
    return sorted(found.items())

"""How the sandbox words a JSON Schema failure in a 400: ``$.path: message`` for the most relevant error."""

from __future__ import annotations

from collections.abc import Iterable

from jsonschema.exceptions import ValidationError, best_match

__all__ = ["describe"]

_MAX_MESSAGE = 300


def _where(prefix: str, error: ValidationError) -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def describe(errors: Iterable[ValidationError], where: str = "$") -> str | None:
    """The most relevant of ``errors`` as ``$.path: message`` (``where`` names the document), or None."""
    error = best_match(errors)
    if error is None:
        return None
    message = error.message if len(error.message) <= _MAX_MESSAGE else error.message[:_MAX_MESSAGE - 3] + "..."
    return f"{_where(where, error)}: {message}"

"""Load JSON Schemas shipped in packages and validate documents against them.

Validation reports every problem at once, each with its JSON path, and never echoes the offending
value: a credentials document holds secrets, and jsonschema's own messages quote the instance.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # jsonschema costs ~30 ms to import; hosts pay it on first validation, not at start-up
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["Problem", "SchemaViolation", "load_schema", "schema_validator", "secret_paths", "validate"]

#: Schema keywords whose jsonschema message only quotes the schema or a property name, never a value.
_SAFE_MESSAGE = {"required", "additionalProperties", "dependentRequired", "unevaluatedProperties"}


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (a JSON path such as ``$.dsr.auth.key``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SchemaViolation(ValueError):
    """A document does not match its schema; ``problems`` lists every reason."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.what = what
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what} is invalid ({len(problems)} problem{'s' * (len(problems) != 1)}):\n{lines}")


_TEMPLATES = {
    "pattern": "must match the pattern {}",
    "format": "must be a valid {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "minItems": "must have at least {} item(s)",
    "maxItems": "must have at most {} item(s)",
    "minProperties": "must have at least {} entry(ies)",
    "maxProperties": "must have at most {} entry(ies)",
    "uniqueItems": "must not contain duplicates",
    "propertyNames": "has a key that is not allowed",
    "oneOf": "does not match exactly one of the allowed forms",
    "anyOf": "does not match any of the allowed forms",
    "not": "has a combination of fields that is not allowed",
}


def _describe(error: ValidationError) -> str:
    """A message for ``error`` that never contains the instance value."""
    kind, expected = str(error.validator), cast(Any, error.validator_value)
    if kind in _SAFE_MESSAGE:
        return error.message
    if kind == "type":
        return f"must be of type {' or '.join(expected) if isinstance(expected, list) else expected}"
    if kind in ("enum", "const"):
        allowed = expected if kind == "enum" else [expected]
        return f"must be {'one of ' if kind == 'enum' else ''}{', '.join(json.dumps(v) for v in allowed)}"
    template = _TEMPLATES.get(kind)
    return template.format(expected) if template else f"does not satisfy '{kind}'"


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _leaves(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    """Descend into oneOf/anyOf so the user sees the concrete reason rather than 'matches none'.

    The branch reported is the one the document evidently meant: the one whose ``const`` discriminator
    (such as ``type: basic``) matched; failing that, jsonschema's best match.
    """
    for error in errors:
        if error.context and error.validator in ("oneOf", "anyOf"):
            from jsonschema.exceptions import best_match

            branches: dict[Any, list[ValidationError]] = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            meant = [b for b in branches.values() if not any(e.validator == "const" for e in b)]
            if len(meant) == 1:
                yield from _leaves(meant[0])
                continue
            best = best_match(error.context)
            if best is not None:
                yield from _leaves(branches[best.relative_schema_path[0]])
                continue
        yield error


def validate(validator: Validator, document: Any, what: str) -> None:
    """Raise :class:`SchemaViolation` listing every problem in ``document``; return if it is valid."""
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    seen: set[Problem] = set()
    problems: list[Problem] = []
    for error in _leaves(errors):
        problem = Problem(_path(error), _describe(error))
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    raise SchemaViolation(what, problems)


def load_schema(source: Traversable | str) -> dict[str, Any]:
    """Read a JSON Schema from a package resource (or a path) and check that it is itself valid."""
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, str) else source.read_text(encoding="utf-8")
    schema = json.loads(text)
    if not isinstance(schema, dict):
        raise ValueError("a JSON Schema must be an object")
    import jsonschema

    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator for ``schema`` (its own ``$schema`` draft) that also asserts ``format``."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@functools.cache
def framework_schema(name: str) -> dict[str, Any]:
    """One of the framework's own schemas: ``request``, ``result`` or ``manifest``."""
    return load_schema(resources.files("dsr_framework") / "schemas" / f"{name}.schema.json")


@functools.cache
def framework_validator(name: str) -> Validator:
    return schema_validator(framework_schema(name))


def secret_paths(schema: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Property paths the schema flags as secret (``writeOnly: true`` or ``x-secret: true``).

    Walks ``properties``, ``$defs`` references, ``oneOf``/``anyOf``/``allOf`` branches and ``items``.
    A path is a tuple of property names; ``*`` stands for any array index or map key.
    """
    defs = schema.get("$defs", {})
    found: set[tuple[str, ...]] = set()

    def walk(node: Any, prefix: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 20:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            walk(defs.get(ref.removeprefix("#/$defs/")), prefix, depth + 1)
        if node.get("writeOnly") is True or node.get("x-secret") is True:
            found.add(prefix)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, (*prefix, key), depth + 1)
        for combinator in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(combinator) or []:
                walk(sub, prefix, depth + 1)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), Mapping):
                walk(node[key], (*prefix, "*"), depth + 1)

    walk(schema, (), 0)
    return sorted(found)


def secret_values(document: Any, paths: Iterable[tuple[str, ...]]) -> set[str]:
    """The string values found at ``paths`` in ``document`` (for redaction)."""
    values: set[str] = set()

    def pick(node: Any, path: tuple[str, ...]) -> None:
        if not path:
            if isinstance(node, str) and node:
                values.add(node)
            return
        head, rest = path[0], path[1:]
        if head == "*":
            children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else []
            for child in children:
                pick(child, rest)
        elif isinstance(node, Mapping) and head in node:
            pick(node[head], rest)

    for path in paths:
        pick(document, path)
    return values

"""Load JSON Schemas shipped in packages and validate documents against them.

Validation reports every problem at once, each with its JSON path, and never echoes the offending
value: a credentials document holds secrets, and jsonschema's own messages quote the instance.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dsr_framework.text import for_people, lines, say

if TYPE_CHECKING:  # jsonschema costs ~30 ms to import; hosts pay it on first validation, not at start-up
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from referencing import Registry, Resource
    from referencing._core import Resolver  # the type of registry.resolver(); not re-exported by the package

__all__ = ["Problem", "SchemaViolation", "UnusableSchema", "dangling_references", "flagged_secret", "load_schema",
           "schema_nodes", "schema_validator", "secret_paths", "secret_values", "validate",
           "values_at"]

#: Schema keywords whose jsonschema message only quotes the schema or a property name, never a value.
_SAFE_MESSAGE = {"required", "dependentRequired"}
#: Keywords whose jsonschema message quotes the document's unknown keys: a key can be a value typed in the
#: wrong place (``{type: basic, s3cr3t}`` in YAML is a key), so the message names the allowed keys instead.
_KEY_MESSAGE = {"additionalProperties": "Additional properties are not allowed",
                "unevaluatedProperties": "Unevaluated properties are not allowed"}


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
        #: the message for people: one line per problem, every value in it escaped (:func:`~dsr_framework.text.say`)
        self.shown = lines(say("{} is invalid ({} problem{}):", what, len(problems), "s" * (len(problems) != 1)),
                           *(say("  - {}", p) for p in problems))
        super().__init__(self.shown)


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


def _schema_words(error: ValidationError) -> str | None:
    """The message for ``error`` that the schema itself gives (names it allows, its own words), if any."""
    kind, expected = str(error.validator), cast(Any, error.validator_value)
    node: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind in _KEY_MESSAGE:
        allowed = sorted(node.get("properties") or {})
        return _KEY_MESSAGE[kind] + (f" here (allowed: {', '.join(allowed)})" if allowed else " here")
    if kind == "pattern" and node.get("x-message"):
        return str(node["x-message"])  # the schema's own words for a pattern people cannot read
    if kind == "not" and isinstance(expected, Mapping) and expected.get("title"):
        return f"must not have {expected['title']}"
    return None


def _describe(error: ValidationError) -> str:
    """A message for ``error`` that never contains the instance value."""
    kind, expected = str(error.validator), cast(Any, error.validator_value)
    if kind in _SAFE_MESSAGE:
        return error.message
    if (words := _schema_words(error)) is not None:
        return words
    if kind == "type":
        return f"must be of type {' or '.join(expected) if isinstance(expected, list) else expected}"
    if kind in ("enum", "const"):
        allowed = expected if kind == "enum" else [expected]
        return f"must be {'one of ' if kind == 'enum' else ''}{', '.join(json.dumps(v) for v in allowed)}"
    template = _TEMPLATES.get(kind)
    return template.format(expected) if template else f"does not satisfy '{kind}'"


def _reference(exc: Exception) -> str:
    ref = getattr(exc, "ref", None) or getattr(exc, "pointer", None)
    return repr(ref) if isinstance(ref, str) else "(unknown)"


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:  # a key is the document's: escaped, so it cannot add a line
        out += f"[{part}]" if isinstance(part, int) else f".{for_people(part)}"
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
    from referencing.exceptions import Unresolvable

    try:
        errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    except Unresolvable as exc:  # a schema that did not come through load_schema; never a traceback for the host
        raise SchemaViolation(what, [Problem("$", f"cannot be checked: the schema's $ref {_reference(exc)} "
                                                  "resolves to nothing")]) from None
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


class UnusableSchema(ValueError):
    """A JSON Schema that is itself invalid, or holds a ``$ref`` that resolves to nothing."""


def load_schema(source: Traversable | str) -> dict[str, Any]:
    """Read a JSON Schema from a package resource (or a path); check it is valid and every ``$ref`` resolves.

    Raises :class:`UnusableSchema` (naming the keyword or reference, never an instance value).
    """
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, str) else source.read_text(encoding="utf-8")
    schema = json.loads(text)
    if not isinstance(schema, dict):
        raise UnusableSchema("a JSON Schema must be an object")
    _check_schema(text)
    return schema


@functools.lru_cache(maxsize=64)
def _check_schema(text: str) -> None:
    """Check the schema ``text`` holds (an object) once per text: the verdict depends on nothing else (every
    ``$ref`` resolves within it or to the bundled metaschemas), and checking the credentials schema against its
    metaschema costs ~80 ms, paid on every configuration loaded. A refusal raises, and is not cached."""
    schema = json.loads(text)
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise UnusableSchema(f"not a valid JSON Schema at {where}: {exc.message}") from None
    dangling = dangling_references(schema)
    if dangling:
        raise UnusableSchema(f"$ref that resolve to nothing: {', '.join(dangling)}")


def _registry() -> Registry[Any]:
    """The schemas a ``$ref`` may reach besides the schema itself: the JSON Schema metaschemas, nothing remote.

    jsonschema's own default fetches unknown ``http(s)`` references over the network; a host must not.
    """
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped]  # jsonschema's own dependency

    return cast("Registry[Any]", REGISTRY)


def _root(schema: Mapping[str, Any]) -> tuple[Resource[Any], Resolver[Any]]:
    from referencing.jsonschema import DRAFT202012, specification_with

    resource = specification_with(str(schema.get("$schema", "")), default=DRAFT202012).create_resource(schema)
    return resource, _registry().resolver_with_root(resource)


def dangling_references(schema: Mapping[str, Any]) -> list[str]:
    """Every ``$ref`` / ``$dynamicRef`` in ``schema`` that ``referencing`` cannot resolve (sorted, unique)."""
    from referencing.exceptions import Unresolvable

    dangling: set[str] = set()
    resource, resolver = _root(schema)
    pending = [(resource, resolver)]
    while pending:
        node, where = pending.pop()
        contents = node.contents
        if isinstance(contents, Mapping):
            for keyword in ("$ref", "$dynamicRef"):
                reference = contents.get(keyword)
                if isinstance(reference, str):
                    try:
                        where.lookup(reference)
                    except Unresolvable:
                        dangling.add(reference)
        pending.extend((sub, where.in_subresource(sub)) for sub in node.subresources())
    return sorted(dangling)


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator for ``schema`` (its own ``$schema`` draft) that also asserts ``format``; never fetches a ``$ref``."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=_registry())


@functools.cache
def framework_schema(name: str) -> dict[str, Any]:
    """One of the framework's own schemas: ``request``, ``result`` or ``manifest``."""
    return load_schema(resources.files("dsr_framework") / "schemas" / f"{name}.schema.json")


@functools.cache
def framework_validator(name: str) -> Validator:
    return schema_validator(framework_schema(name))


def schema_nodes(schema: Mapping[str, Any], max_depth: int = 40) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    """Every subschema that describes some part of a document, with where: ``(property path, ref chain)``.

    The path is a tuple of property names (``*`` for any array item or map value). The chain is the
    subschema followed by whatever its ``$ref`` leads to (resolved by ``referencing``, as the validator does),
    so a property that refers to a ``$defs`` entry is seen with both. Follows ``properties``, ``items``,
    ``additionalProperties``, ``oneOf``/``anyOf``/``allOf``; a reference that resolves to nothing ends its branch.
    """
    from referencing.exceptions import Unresolvable

    _, root = _root(schema)
    pending: list[tuple[Any, Resolver[Any], tuple[str, ...], int]] = [(schema, root, (), 0)]
    while pending:
        node, resolver, path, depth = pending.pop()
        if not isinstance(node, Mapping) or depth > max_depth:
            continue
        chain: list[tuple[Mapping[str, Any], Resolver[Any]]] = [(node, resolver)]
        while isinstance(chain[-1][0].get("$ref"), str) and len(chain) < 10:
            try:
                resolved = chain[-1][1].lookup(chain[-1][0]["$ref"])
            except Unresolvable:
                break
            if not isinstance(resolved.contents, Mapping):
                break
            chain.append((resolved.contents, resolved.resolver))
        yield path, [schema_node for schema_node, _ in chain]
        for schema_node, where in chain:
            pending.extend(_children(schema_node, where, path, depth + 1))


def _children(node: Mapping[str, Any], resolver: Resolver[Any], path: tuple[str, ...],
              depth: int) -> Iterator[tuple[Any, Resolver[Any], tuple[str, ...], int]]:
    for name, sub in (node.get("properties") or {}).items():
        yield sub, resolver, (*path, name), depth
    for keyword in ("items", "additionalProperties"):
        if isinstance(node.get(keyword), Mapping):
            yield node[keyword], resolver, (*path, "*"), depth
    for combinator in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(combinator) or []:
            yield sub, resolver, path, depth


def flagged_secret(chain: Iterable[Any]) -> bool:
    """True when a subschema (or what its ``$ref`` leads to) says ``writeOnly: true`` or ``x-secret: true``."""
    return any(isinstance(n, Mapping) and (n.get("writeOnly") is True or n.get("x-secret") is True) for n in chain)


def secret_paths(schema: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Property paths the schema flags as secret (``writeOnly: true`` or ``x-secret: true``).

    See :func:`schema_nodes` for what is followed; ``*`` in a path stands for any array index or map key.
    """
    return sorted({path for path, chain in schema_nodes(schema) if flagged_secret(chain)})


def values_at(document: Any, path: tuple[str, ...], shown: str = "$") -> Iterator[tuple[str, Any]]:
    """Each value at a schema ``path`` (as :func:`schema_nodes` gives it) in ``document``, with its JSON path;
    ``*`` stands for every array item and every map value. A path the document does not have yields nothing."""
    if not path:
        yield shown, document
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(document, list):
        for index, item in enumerate(document):
            yield from values_at(item, rest, f"{shown}[{index}]")
    elif head == "*" and isinstance(document, Mapping):
        for key, value in document.items():
            yield from values_at(value, rest, f"{shown}.{key}")
    elif isinstance(document, Mapping) and head in document:
        yield from values_at(document[head], rest, f"{shown}.{head}")


def secret_values(document: Any, paths: Iterable[tuple[str, ...]]) -> set[str]:
    """The string values found at ``paths`` in ``document`` (for redaction)."""
    return {value for path in paths for _, value in values_at(document, path) if isinstance(value, str) and value}

"""A connector's credentials schema as a Markdown reference page, so the page cannot drift from the schema.

The schema is what a host validates a configuration with, so it is the truth about the settings: this module
renders every property of it (its path, type, default, allowed values and description) as one table, and each
object a ``oneOf`` offers (HTTP Basic, an OAuth client, ...) as a table of its own. Run it as::

    python -m dsr_framework.schema_docs connector_mparticle/schemas/credentials.schema.json \\
        > docs/configuration-reference.md

A test renders the page again and compares it with the committed one, so a schema change without the page
fails CI with this command in its message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

Schema = Mapping[str, Any]

#: The command that renders a page, named at its top (the path is the schema's, as given).
COMMAND = "python -m dsr_framework.schema_docs {schema}"

_HEADER = "| setting | type | default | allowed values | description |\n|---|---|---|---|---|\n"


def resolve(schema: Schema, node: Schema) -> Schema:
    """``node`` with a local ``$ref`` (``#/$defs/name``) merged under its own keys (its title, description and
    default win over the definition's, as JSON Schema 2020-12 lets them sit beside ``$ref``)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return node
    target = resolve(schema, schema["$defs"][ref.removeprefix("#/$defs/")])
    return {**target, **{key: value for key, value in node.items() if key != "$ref"}}


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def code(value: Any) -> str:
    """A JSON value as inline code (``null`` for None, strings without quotes)."""
    shown = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return f"`{shown}`"


def anchor(title: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading: lower case, words joined by hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return "-".join(kept.split())


def choices(schema: Schema, node: Schema) -> list[Schema]:
    """The objects a ``oneOf`` of ``$ref`` offers (for example the kinds of authentication), resolved."""
    return [resolve(schema, option) for option in node.get("oneOf", [])]


def type_of(schema: Schema, node: Schema) -> str:
    """A reader's name for the node's type: ``string``, ``array of string``, ``one of: [HTTP Basic](#…)``..."""
    options = choices(schema, node)
    if options:
        return "one of: " + ", ".join(f"[{o['title']}](#{anchor(o['title'])})" for o in options)
    if "const" in node:
        return f"constant {code(node['const'])}"
    names = _type_names(node)
    shown = " or ".join(names) or "any"
    if "array" in names and "items" in node:
        shown = f"array of {type_of(schema, resolve(schema, node['items']))}"
    if node.get("writeOnly") or node.get("x-secret"):
        shown += ", **secret**"
    return shown


def _type_names(node: Schema) -> list[str]:
    """The JSON types the node declares, or those of its enum's values when it declares none."""
    declared = node.get("type")
    names = [declared] if isinstance(declared, str) else list(declared or [])
    if not names and "enum" in node:
        names = sorted({_json_type(value) for value in node["enum"]})
    return names


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}.get(
        type(value), "any")


def allowed(schema: Schema, node: Schema) -> str:
    """The values the node accepts, in words: its enum, its bounds, its pattern's message."""
    if node.get("type") == "array" and "items" in node:
        return allowed(schema, resolve(schema, node["items"]))
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and "enum" in extra:
        return "each value one of " + ", ".join(code(v) for v in extra["enum"])
    if "enum" in node:
        return ", ".join(code(value) for value in node["enum"])
    return "; ".join(_bounds(node))


def _bounds(node: Schema) -> Iterator[str]:
    words = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<",
             "minLength": "length ≥", "maxLength": "length ≤", "maxItems": "at most", "minItems": "at least"}
    for key, word in words.items():
        if key in node:
            yield f"{word} {node[key]}" + (" items" if key in ("maxItems", "minItems") else "")
    if "x-message" in node:
        yield str(node["x-message"])
    elif "pattern" in node:
        yield f"matches `{node['pattern']}`"


def default_of(node: Schema, required: bool) -> str:
    if "default" in node:
        return code(node["default"])
    return "**required**" if required else "not set"


def rows(schema: Schema, node: Schema, prefix: str = "") -> Iterator[str]:
    """One table row per property, depth first, each object's own row before its properties'."""
    required = set(node.get("required", []))
    for name, raw in node.get("properties", {}).items():
        child = resolve(schema, raw)
        path = f"{prefix}{name}"
        described = child.get("description") or child.get("title") or ""
        yield (f"| `{path}` | {cell(type_of(schema, child))} | {cell(default_of(child, name in required))} | "
               f"{cell(allowed(schema, child))} | {cell(str(described))} |\n")
        if "properties" in child:
            yield from rows(schema, child, f"{path}.")


def offered_objects(schema: Schema) -> list[Schema]:
    """Every object some ``oneOf`` in the schema offers, once each, in the order they are first met."""
    found: dict[str, Schema] = {}

    def walk(node: Schema) -> None:
        for option in choices(schema, node):
            found.setdefault(str(option["title"]), option)
        for child in node.get("properties", {}).values():
            walk(resolve(schema, child))

    walk(schema)
    return list(found.values())


def render(schema: Schema, schema_path: str) -> str:
    """The whole reference page for the schema ``schema_path`` names."""
    command = COMMAND.format(schema=schema_path)
    parts = [f"# {schema.get('title', 'Configuration')}: reference\n\n",
             f"<!-- Generated from {schema_path} by `{command}`; do not edit by hand. -->\n\n",
             f"{schema.get('description', '')}\n\n",
             f"Every setting `{schema_path}` accepts. A setting marked **secret** is never shown, logged or "
             "stored; write it as `${NAME}` and supply it from the environment.\n\n",
             _HEADER, *rows(schema, schema)]
    for option in offered_objects(schema):
        parts += [f"\n## {option['title']}\n\n", _HEADER, *rows(schema, option)]
    return "".join(parts)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m dsr_framework.schema_docs SCHEMA.json > PAGE.md", file=sys.stderr)
        return 2
    schema = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.stdout.write(render(schema, argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

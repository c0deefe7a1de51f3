"""The credentials schema and what it says of a configuration: loaded through ``manifest.yaml`` (the one source),
its ``default`` values filled in by a jsonschema validator (:func:`with_defaults`), and every problem found at
once (:func:`problems`): the schema's, then what only the URL parser that opens a URL and the file system see.
:mod:`connector_mparticle.settings` turns a valid configuration into types.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector_mparticle.errors import ConfigurationError
from connector_mparticle.http.session import tls_context
from connector_mparticle.http.urls import UrlRefused, origin_of
from dsr_framework.files import FileError, read_trusted
from dsr_framework.manifest import Manifest, load_manifest
from dsr_framework.validation import Problem, SchemaViolation, schema_nodes, schema_validator, validate, values_at

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["MAX_TRUST_STORE_BYTES", "credentials_schema", "manifest", "problems", "url_paths", "with_defaults"]


@functools.cache
def manifest() -> Manifest:
    """The connector's manifest (``manifest.yaml``), validated."""
    import connector_mparticle

    return load_manifest(connector_mparticle)


@functools.cache
def credentials_schema() -> dict[str, Any]:
    """The credentials schema: the file the manifest's ``credentials_schema`` names, checked as usable."""
    return manifest().credentials_schema()


def _plain(value: Any) -> Any:
    """A deep copy of a JSON-like value as plain dicts and lists, so defaults can be set in it."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@functools.cache
def _default_filler() -> Validator:
    """A validator of the credentials schema that fills in ``default`` values as it goes.

    Built the way jsonschema's FAQ shows (its ``properties`` keyword extended to set defaults), so ``$ref`` is
    resolved by jsonschema itself. One rule more: a subschema's defaults apply only where the document matches
    that subschema, so of ``oneOf`` branches (auth: basic or OAuth) only the matching one's defaults are filled.
    """
    from jsonschema.validators import extend
    from referencing import Registry

    schema = credentials_schema()
    plain = schema_validator(schema)
    check_properties = plain.VALIDATORS["properties"]

    def fill_then_check(validator: Validator, properties: Mapping[str, Any], instance: Any,
                        subschema: Mapping[str, Any]) -> Iterator[ValidationError]:
        missing = {name: sub["default"] for name, sub in properties.items() if isinstance(instance, dict)
                   and isinstance(sub, Mapping) and "default" in sub and name not in instance}
        if missing and plain.evolve(schema=subschema).is_valid(instance):
            instance.update(copy.deepcopy(missing))
        yield from check_properties(validator, properties, instance, subschema)

    filling: type[Validator] = extend(  # type: ignore[no-untyped-call]  # extend is untyped in types-jsonschema
        type(plain), {"properties": fill_then_check})
    # An empty registry: every $ref is local (load_schema checked that each resolves), so nothing is fetched.
    return filling(schema, registry=Registry())


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a valid ``config`` with the schema's defaults filled in, at every level."""
    full: dict[str, Any] = _plain(config)
    _default_filler().validate(full)
    return full


#: Settings that name a file which must exist.
_FILES = ("trust_store", "signature_trust_store")


@functools.cache
def url_paths() -> tuple[tuple[str, ...], ...]:
    """Where the schema puts a URL: every property that refers to ``$defs/url`` (``*``: each array item)."""
    nodes = schema_nodes(credentials_schema())
    return tuple(sorted({path for path, chain in nodes if chain[0].get("$ref") == "#/$defs/url"}))


def _refusal(url: Any) -> str | None:
    """Why the URL policy refuses ``url`` (None when it allows it, or when it is no string: the schema says so)."""
    if not isinstance(url, str):
        return None
    try:
        origin_of(url)
    except UrlRefused as exc:
        return str(exc)
    return None


def _url_and_file_problems(config: Mapping[str, Any]) -> list[Problem]:
    """What the schema cannot say: URLs judged by the parser that opens them, files that must exist. Reads
    the raw configuration defensively, so its problems are reported together with the schema's."""
    refusals = [(where, _refusal(url)) for path in url_paths() for where, url in values_at(config, path)]
    found = [Problem(where, refusal) for where, refusal in refusals if refusal]
    for name in _FILES:
        file = config.get(name)
        if isinstance(file, str) and file and (refusal := _file_refusal(file)) is not None:
            found.append(Problem(f"$.{name}", refusal))
    return found


def _file_refusal(file: str) -> str | None:
    """Why a configured certificate file cannot be used, found before anything is sent (not mid-request). A
    name the system cannot look up (too long, a NUL) is no such file, not a crash."""
    try:
        if not Path(file).is_file():
            return "no such file"
    except (OSError, ValueError):
        return "no such file"
    try:  # it decides whom the connector trusts: refused, as the configuration is, when others could change it
        read_trusted(file, MAX_TRUST_STORE_BYTES, "certificate file")
    except FileError as exc:
        return str(exc)
    try:  # the parser that will read it
        tls_context(file)
    except ConfigurationError:
        return "cannot be read as PEM certificates (is it a CA bundle?)"
    return None


#: The largest certificate file read (a full public CA bundle is about 250 KB).
MAX_TRUST_STORE_BYTES = 16 * 1024 * 1024


def problems(config: Mapping[str, Any]) -> list[Problem]:
    """Every problem in ``config``: the schema's, then those only the URL parser and the file system see."""
    found = _url_and_file_problems(config)
    try:
        validate(schema_validator(credentials_schema()), dict(config), "mParticle connector configuration")
    except SchemaViolation as exc:
        reported = {p.path for p in exc.problems}
        return [*exc.problems, *(p for p in found if p.path not in reported)]
    return found

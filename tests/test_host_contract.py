"""Contract checks at load time: manifest against hooks, and credentials schemas whose ``$ref`` go nowhere.

A broken connector is a ``LoadProblem`` for that connector only; every other connector keeps working.
"""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest

from dsr_framework.host import load_host
from dsr_framework.validation import UnusableSchema, dangling_references, load_schema, secret_paths
from tests.support.connectors import BASIC_SCHEMA, ConnectorFactory

GOOD_CONFIG = {"endpoint": "https://api.example.com", "api_key": "k3y-abcdef-123456"}


def enabled(*names: str) -> dict[str, Any]:
    return {"connectors": {n: {"enabled": True, "config": GOOD_CONFIG} for n in names}}


def schema_with(**properties: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASIC_SCHEMA)
    schema["properties"].update(properties)
    return schema


def test_a_capability_with_no_hook_is_a_load_problem_for_that_connector_only(connectors: ConnectorFactory) -> None:
    manifest = connectors.manifest("promiser", ["test_connection", "handle_access", "handle_deletion"])
    manifest["capabilities"].append({"hook": "handle_opt_out", "identifier_categories": ["email"],
                                     "mode": "synchronous", "description": "records an opt-out"})
    connectors.write("promiser", manifest=manifest, entry_point=True)
    connectors.write("healthy", entry_point=True)
    host = load_host(enabled("promiser", "healthy"))
    assert host.connectors == ["healthy"]
    [problem] = host.problems
    assert problem.connector == "promiser" and problem.stage == "hooks"
    assert "capability entries for hook(s) it does not declare and implement: handle_opt_out" in problem.message


def test_two_capabilities_for_one_hook_are_refused(connectors: ConnectorFactory) -> None:
    manifest = connectors.manifest("twice", ["test_connection", "handle_access", "handle_deletion"])
    manifest["capabilities"].append(dict(manifest["capabilities"][0]))
    connectors.write("twice", manifest=manifest, entry_point=True)
    [problem] = load_host(enabled("twice")).problems
    assert "more than one capability entry for: handle_access" in problem.message


@pytest.mark.parametrize(("schema", "expected"), [
    (schema_with(region={"$ref": "#/$defs/region", "title": "Region", "description": "Where"}),
     "$ref that resolve to nothing: #/$defs/region"),
    (schema_with(region={"$ref": "https://schemas.example.com/region.json", "title": "R", "description": "R"}),
     "https://schemas.example.com/region.json"),
    (schema_with(region={"type": "strng", "title": "Region", "description": "Where"}),
     "not a valid JSON Schema at properties/region/type"),
], ids=["dangling-local-ref", "remote-ref", "invalid-keyword"])
def test_a_broken_credentials_schema_is_a_load_problem_and_the_others_keep_working(
    connectors: ConnectorFactory, monkeypatch: pytest.MonkeyPatch, schema: dict[str, Any], expected: str,
) -> None:
    lookups: list[object] = []
    real = socket.getaddrinfo

    def counted(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counted)
    connectors.write("crooked", schema=schema, entry_point=True)
    connectors.write("healthy", entry_point=True)
    host = load_host(enabled("crooked", "healthy"))  # must not raise
    assert host.connectors == ["healthy"]
    [problem] = host.problems
    assert problem.connector == "crooked" and problem.stage == "manifest" and expected in problem.message
    assert lookups == [], "a $ref must never be fetched over the network"
    assert host.connector("healthy").test_connection().ok


def test_refs_are_resolved_by_referencing_including_ids_inside_defs() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.example.com/credentials.json",
        "type": "object",
        "$defs": {
            "auth": {"$id": "auth.json", "type": "object",
                     "properties": {"secret": {"$ref": "#/$defs/secret"}, "key": {"type": "string"}},
                     "$defs": {"secret": {"type": "string", "writeOnly": True}}},
        },
        "properties": {"dsr": {"$ref": "auth.json"},
                       "inputs": {"type": "array", "items": {"$ref": "https://schemas.example.com/auth.json"}}},
    }
    assert dangling_references(schema) == []
    assert secret_paths(schema) == [("dsr", "secret"), ("inputs", "*", "secret")]


def test_load_schema_names_every_dangling_reference(tmp_path: Any) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema", "properties": '
                    '{"a": {"$ref": "#/$defs/a"}, "b": {"items": {"$ref": "#/$defs/b"}}}}')
    with pytest.raises(UnusableSchema, match=r"#/\$defs/a, #/\$defs/b"):
        load_schema(str(path))


def test_a_schema_is_checked_once_per_text_and_each_load_is_a_fresh_copy(tmp_path: Any) -> None:
    """``load_schema`` remembers the verdict on a schema's text (checking one costs tens of milliseconds on every
    configuration loaded): a refused text is refused again, a file fixed in place is checked anew, and each
    caller gets a document of its own."""
    path = tmp_path / "s.json"
    path.write_text('{"type": 5}')
    for _ in range(2):
        with pytest.raises(UnusableSchema, match="not a valid JSON Schema"):
            load_schema(str(path))
    path.write_text('{"type": "object", "properties": {"a": {"type": "string"}}}')
    first = load_schema(str(path))
    first["properties"]["a"]["type"] = "integer"
    assert load_schema(str(path))["properties"]["a"] == {"type": "string"}
    path.write_text('{"type": "object", "properties": {"a": {"$ref": "#/$defs/gone"}}}')
    with pytest.raises(UnusableSchema, match="gone"):
        load_schema(str(path))


def test_each_manifest_load_holds_a_raw_document_of_its_own() -> None:
    """The manifest's YAML is parsed once per text; a host changing one manifest's ``raw`` changes no other."""
    import importlib

    from dsr_framework.manifest import load_manifest

    plugin = importlib.import_module("connector_mparticle.plugin")
    first = load_manifest(plugin)
    first.raw["capabilities"].clear()
    second = load_manifest(plugin)
    assert second.raw["capabilities"] and second == load_manifest(plugin)
    assert second.capabilities == first.capabilities

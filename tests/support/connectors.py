"""Build small example connectors on disk, the way a third party would package one."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

BASIC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["endpoint", "api_key"],
    "additionalProperties": False,
    "properties": {
        "endpoint": {"type": "string", "title": "Endpoint", "description": "Base URL", "pattern": "^https://"},
        "api_key": {"type": "string", "title": "API key", "description": "Secret key", "minLength": 8,
                    "writeOnly": True, "x-secret": True},
        "retries": {"type": "integer", "title": "Retries", "description": "Retry count", "minimum": 0},
    },
}

#: Hook implementations of a well-behaved example connector; ``NAME`` is replaced by the connector id.
GOOD_HOOKS = '''
from dsr_framework import hookimpl, CheckOutcome, ConnectionResult, Result, AuditEvent

CALLS = []

@hookimpl
def test_connection(config):
    CALLS.append("test_connection")
    ok = config["api_key"] != "wrong-key-000"
    return ConnectionResult((CheckOutcome("api", ok, "NAME accepted the key" if ok else "NAME rejected the key",
                                          latency_ms=1.0, error_class=None if ok else "authentication"),))

@hookimpl
def handle_access(config, request, state):
    CALLS.append(("handle_access", request.request_id, state))
    if state is None:
        return Result(request.request_id, request.type, "pending", "submitted to NAME",
                      state={"polls": 1}, next_check_at=request.submitted_at,
                      audit=(AuditEvent("submit", "accepted", {"remote_id": "r-1"}),))
    return Result(request.request_id, request.type, "completed", "NAME finished", summary={"by": "NAME"})

@hookimpl
def handle_deletion(config, request, state):
    CALLS.append(("handle_deletion", request.request_id))
    return Result(request.request_id, request.type, "completed", "NAME deleted", summary={"by": "NAME"})
'''


class ConnectorFactory:
    """Writes example connector packages into ``root`` (which is on ``sys.path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []

    def manifest(self, name: str, hooks: list[str], **overrides: Any) -> dict[str, Any]:
        manifest: dict[str, Any] = {
            "id": name,
            "name": name.title(),
            "version": "1.0.0",
            "description": f"Example connector {name}.",
            "documentation_url": f"https://docs.example.com/{name}",
            "capabilities": [
                {"hook": h, "identifier_categories": ["email"], "mode": "asynchronous",
                 "description": f"{h} for {name}"}
                for h in hooks if h != "test_connection"
            ],
            "credentials_schema": "schemas/credentials.schema.json",
            "egress_hosts": [f"api.{name}.example.com"],
            "rate_limits": [{"api": "api", "limit": 10, "per": "second", "scope": "account", "published": True}],
            "target_share": 0.75,
            "hooks": hooks,
        }
        manifest.update(overrides)
        return manifest

    def write(
        self,
        name: str,
        source: str = GOOD_HOOKS,
        *,
        hooks: list[str] | None = None,
        manifest: dict[str, Any] | None = None,
        schema: dict[str, Any] | None = None,
        entry_point: bool = False,
    ) -> Path:
        """Create package ``name``; ``hooks`` are declared in its manifest (default: what GOOD_HOOKS has)."""
        package = self.root / name
        (package / "schemas").mkdir(parents=True)
        (package / "__init__.py").write_text(textwrap.dedent(source).replace("NAME", name))
        declared = hooks if hooks is not None else ["test_connection", "handle_access", "handle_deletion"]
        data = manifest if manifest is not None else self.manifest(name, declared)
        (package / "manifest.yaml").write_text(yaml.safe_dump(data))
        (package / "schemas" / "credentials.schema.json").write_text(json.dumps(schema or BASIC_SCHEMA))
        if entry_point:
            dist = self.root / f"example_{name}-1.0.dist-info"
            dist.mkdir()
            (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: example-{name}\nVersion: 1.0\n")
            (dist / "entry_points.txt").write_text(f"[dsr.connectors]\n{name} = {name}\n")
        self.names.append(name)
        importlib.invalidate_caches()
        return package

    def load(self, name: str) -> Any:
        return importlib.import_module(name)

    def cleanup(self) -> None:
        for name in self.names:
            sys.modules.pop(name, None)

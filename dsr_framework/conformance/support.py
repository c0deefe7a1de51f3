"""Helpers for the conformance checks: secret-looking fields, an egress guard, and driving a request."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dsr_framework.host import ConnectorHandle
from dsr_framework.models import DsrRequest, Result

__all__ = ["EgressGuard", "drive", "secret_looking_fields"]

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


def secret_looking_fields(schema: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(JSON path, flagged?) for every property whose name looks like a secret, anywhere in ``schema``."""
    defs = schema.get("$defs", {})
    found: dict[str, bool] = {}

    def walk(node: Any, path: str, depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 25:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            walk(defs.get(ref.removeprefix("#/$defs/")), path, depth + 1)
        for name, sub in (node.get("properties") or {}).items():
            where = f"{path}.{name}"
            if looks_secret(name) and isinstance(sub, Mapping) and sub.get("type", "string") == "string":
                target = defs.get(str(sub.get("$ref", "")).removeprefix("#/$defs/"), sub)
                flagged = any(s.get("writeOnly") is True or s.get("x-secret") is True for s in (sub, target))
                found[where] = found.get(where, True) and flagged
            walk(sub, where, depth + 1)
        for combinator in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(combinator) or []:
                walk(sub, path, depth + 1)
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], f"{path}[]", depth + 1)

    walk(schema, "$", 0)
    return sorted(found.items())


@dataclass
class EgressGuard:
    """Blocks and records any connection to a host that is neither declared nor the conformance target."""

    allowed: set[str]
    violations: list[str] = field(default_factory=list)
    _resolved: set[str] = field(default_factory=set)

    def _allowed(self, host: str) -> bool:
        host = host.lower().strip("[]")
        if host in self.allowed or host in self._resolved:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback and bool(
                {"127.0.0.1", "localhost", "::1"} & self.allowed)
        except ValueError:
            return False

    @contextmanager
    def active(self) -> Iterator[EgressGuard]:
        real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if host is not None and not guard._allowed(name):
                guard.violations.append(f"DNS lookup of {name}")
                raise OSError(f"conformance: {name} is not a declared egress host")
            results = real_getaddrinfo(host, *args, **kwargs)
            guard._resolved.update(str(r[4][0]) for r in results)
            return results

        def connect(self: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and not guard._allowed(str(address[0])):
                guard.violations.append(f"connection to {address[0]}:{address[1]}")
                raise OSError(f"conformance: {address[0]} is not a declared egress host")
            return real_connect(self, address)

        socket.getaddrinfo = getaddrinfo
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            socket.getaddrinfo = real_getaddrinfo
            socket.socket.connect = real_connect  # type: ignore[method-assign]


def new_request(kind: str, subject: Mapping[str, str], regulation: str, output_dir: str | None,
                request_id: str) -> DsrRequest:
    return DsrRequest(request_id, kind, regulation, dict(subject), datetime.now(UTC), output_dir)  # type: ignore[arg-type]


def drive(handle: ConnectorHandle, request: DsrRequest, budget: float,
          state: Mapping[str, Any] | None = None) -> tuple[Result, list[Result]]:
    """Call the hook (again with each state, JSON round-tripped as a host stores it) until the result is final.

    Raises ``TimeoutError`` when the budget runs out; returns the final result and every result seen.
    """
    deadline = time.monotonic() + budget
    seen: list[Result] = []
    current = dict(state) if state is not None else None
    while True:
        result = handle.handle(request, current)
        seen.append(result)
        if result.final:
            return result, seen
        assert result.state is not None and result.next_check_at is not None
        current = json.loads(json.dumps(result.state))  # the host stores JSON, not Python objects
        wait = (result.next_check_at - datetime.now(UTC)).total_seconds()
        if time.monotonic() + max(wait, 0) > deadline:
            raise TimeoutError(f"{request.type} still pending after its {budget:g}s budget "
                               f"(next check was {max(wait, 0):.1f}s away): {result.message}")
        time.sleep(max(0.0, wait))

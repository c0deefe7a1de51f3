"""Run the mParticle connector the way a host does: through load_host and the facade."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from connector_mparticle.sandbox import Sandbox
from dsr_framework import DsrRequest, Result
from dsr_framework.host import ConnectorHandle, load_host

FAST_POLLING = {"min_interval_seconds": 0.1, "max_interval_seconds": 2}


def mparticle(sb: Sandbox, oauth: bool = False, **settings: Any) -> ConnectorHandle:
    """The mParticle connector, loaded through its entry point, configured for ``sb``."""
    config = sb.connector_config(oauth=oauth, polling=FAST_POLLING)
    config.update(settings)
    host = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}})
    assert host.problems == [], host.problems
    return host.connector("mparticle")


def request(kind: str = "access", request_id: str = "host-req-1", email: str = "jane@example.com",
            output_dir: str | None = None, regulation: str = "gdpr", **identities: str) -> DsrRequest:
    return DsrRequest(request_id, kind, regulation, {"email": email, **identities},  # type: ignore[arg-type]
                      datetime(2026, 11, 29, 10, 0, tzinfo=UTC), output_dir)


def drive(handle: ConnectorHandle, req: DsrRequest, timeout: float = 20.0,
          state: dict[str, Any] | None = None) -> tuple[Result, int]:
    """Call the hook for ``req`` (again with each returned state, at its next check time) until final."""
    deadline = time.time() + timeout
    calls = 0
    while True:
        result = handle.handle(req, state)
        calls += 1
        if result.final:
            return result, calls
        assert result.next_check_at is not None and result.state is not None
        if time.time() > deadline:
            raise AssertionError(f"still pending after {timeout}s: {result.message}")
        time.sleep(max(0.0, (result.next_check_at - datetime.now(UTC)).total_seconds()))
        state = dict(result.state)

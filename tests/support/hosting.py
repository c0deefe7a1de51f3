"""Run the mParticle connector the way a host does: through load_host and the facade."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connector_mparticle.files import stem
from connector_mparticle.flows.subject import subject_digest
from connector_mparticle.sandbox import Sandbox
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive as run_to_final
from dsr_framework.host import ConnectorHandle, load_host

FAST_POLLING = {"min_interval_seconds": 0.1, "max_interval_seconds": 2}
#: A workspace with a raised DSR limit (40/s). At the published 1000 a minute the throttle spaces DSR calls 80 ms
#: apart, and hundreds of tests spent seconds each waiting there; the sandbox still enforces the published limit,
#: and the tests of the throttle set limits of their own.
FAST_THROTTLE = {"limits": {"dsr": 40}}


def mparticle(sb: Sandbox, oauth: bool = False, **settings: Any) -> ConnectorHandle:
    """The mParticle connector, loaded through its entry point, configured for ``sb`` (``settings`` replace
    its settings; a ``throttle`` given is merged with :data:`FAST_THROTTLE`)."""
    config = sb.connector_config(oauth=oauth, polling=FAST_POLLING)
    config.update(settings)
    config["throttle"] = {**FAST_THROTTLE, **settings.get("throttle", {})}
    host = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}})
    assert host.problems == [], host.problems
    return host.connector("mparticle")


def request(kind: str = "access", request_id: str = "host-req-1", email: str | None = "jane@example.com",
            output_dir: str | None = None, regulation: str = "gdpr", **identities: str) -> DsrRequest:
    """A request for Jane (or, with ``email=None``, for whoever ``identities`` name)."""
    ids = {"email": email, **identities} if email is not None else dict(identities)
    return DsrRequest(request_id, kind, regulation, ids,  # type: ignore[arg-type]
                      datetime(2026, 11, 29, 10, 0, tzinfo=UTC), output_dir)


def drive(handle: ConnectorHandle, req: DsrRequest, timeout: float = 20.0,
          state: dict[str, Any] | None = None) -> tuple[Result, int]:
    """Call the hook for ``req`` (again with each returned state, at its next check time) until final."""
    driven = run_to_final(lambda current: handle.handle(req, current), state=state, budget=timeout)
    return driven.result, driven.calls


def file_stem(kind: str, req: DsrRequest) -> str:
    """The start of the names of the files written for ``req`` (bound to its id and its subject)."""
    return stem(kind, req.request_id, subject_digest(req))

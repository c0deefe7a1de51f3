"""The connection test: one check per API, each proving its credentials without changing any data.

Each check names the host it tried and gets a fair share of the call's time budget, so one API that hangs
cannot keep the others from being checked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import MParticleError
from connector_mparticle.http.deadline import bounded, current
from dsr_framework.models import CheckOutcome, ConnectionResult

__all__ = ["test_connection"]


def test_connection(conn: MParticleConnector) -> ConnectionResult:
    """Check the DSR, Events and Identity credentials (and the Profile API's, when configured), one outcome each."""
    settings = conn.settings
    checks: list[tuple[str, str, Callable[[], object], str]] = [
        ("dsr_api", "dsr", conn.dsr.probe,
         "the DSR API at {host} accepted the workspace key and secret (GET /v3/requests/0 answered 404, as "
         "expected)"),
        ("events_api", "events", lambda: conn.events.upload(
            {"environment": settings.environment, "events": [], "source_request_id": str(uuid.uuid4())},
            what="connection check"),
         "the Events API at {host} accepted the input key and secret (an empty batch was accepted with HTTP 202)"),
        ("identity_api", "identity", lambda: conn.identity.search(
            {"email": f"dsr-connection-check-{uuid.uuid4().hex[:12]}@example.invalid"}),
         "the Identity API at {host} accepted the input key and secret (a search for a made-up address found "
         "nothing)"),
    ]
    if conn.profile is not None:
        profile = conn.profile
        checks.append(("profile_api", "profile", lambda: profile.by_mpid("1"),
                       "the Profile API at {host} accepted the OAuth token (a made-up mpid has no profile)"))
    outcomes = []
    for index, (name, api, probe, success) in enumerate(checks):
        host = str(settings.origin(api))
        outer = current()
        share = outer.remaining() / (len(checks) - index) if outer is not None else settings.timeouts.total_seconds
        started = time.perf_counter()
        try:
            with bounded(max(share, 0.001), f"the {name} check"):
                probe()
        except MParticleError as exc:
            outcomes.append(CheckOutcome(name, False, f"{conn.redactor(exc.message)} (tried {host})",
                                         (time.perf_counter() - started) * 1000, exc.error_class))
        else:
            outcomes.append(CheckOutcome(name, True, success.format(host=host), (time.perf_counter() - started) * 1000))
    return ConnectionResult(tuple(outcomes))


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

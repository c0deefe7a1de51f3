"""The mParticle connector's hook implementations (entry point ``mparticle`` in group ``dsr.connectors``).

Each hook validates the configuration, gets the cached connector for it, and runs one bounded step. Every
remote, network or configuration condition comes back as a classified result; nothing is raised for them.

Hosts import this module at start-up, so it imports only the framework's models; the HTTP stack
(requests, requests-oauthlib, pyrate-limiter) loads on the first hook call.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from dsr_framework import hookimpl
from dsr_framework.models import CheckOutcome, ConnectionResult, DsrRequest, Result

__all__ = ["handle_access", "handle_deletion", "handle_opt_out", "test_connection"]


@hookimpl
def test_connection(config: Mapping[str, Any]) -> ConnectionResult:
    """Check the DSR, Events and Identity credentials, one outcome per API."""
    from connector_mparticle import flows
    from connector_mparticle.connector import connected
    from connector_mparticle.errors import MParticleError

    with ExitStack() as call:  # the call's deadline runs from here: building a new connector is inside it
        try:
            conn = call.enter_context(connected(config, "the connection test"))
        except MParticleError as exc:
            return ConnectionResult((CheckOutcome("configuration", False, exc.message,
                                                  error_class=exc.error_class),))
        return flows.check_connection(conn)


test_connection.__test__ = False  # type: ignore[attr-defined]  # a hook, not a pytest test


def _run(step: str, config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    from connector_mparticle import flows
    from connector_mparticle.connector import connected
    from connector_mparticle.errors import (
        ConfigurationError,
        MParticleError,
        RetryLaterError,
        failed_result,
        still_pending,
    )

    if request.type != step:
        return failed_result(request, ConfigurationError(f"a {request.type} request cannot go to the {step} hook"))
    with ExitStack() as call:  # the call's deadline runs from here: building a new connector is inside it
        try:
            conn = call.enter_context(connected(config, f"the {request.type} call"))
        except RetryLaterError as exc:  # a pending request stays pending through trouble that is not a verdict
            return still_pending(request, state, exc) if isinstance(state, Mapping) and state else \
                failed_result(request, exc)
        except MParticleError as exc:
            return failed_result(request, exc)
        return flows.run(conn, request, state)  # state is checked there: it comes from outside


@hookimpl
def handle_access(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """OpenDSR access: submit, check until complete, download and summarise the results."""
    return _run("access", config, request, state)


@hookimpl
def handle_deletion(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """OpenDSR erasure: submit, check until complete, confirm with identity searches."""
    return _run("deletion", config, request, state)


@hookimpl
def handle_opt_out(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """Identity search, then consent state recorded through the Events API."""
    return _run("opt_out", config, request, state)

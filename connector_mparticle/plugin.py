"""The mParticle connector's hook implementations, the optional ``handle_cancel`` too (entry point ``mparticle`` in
group ``dsr.connectors``).

Each hook validates the configuration, gets the cached connector for it, and runs one bounded step. Every
remote, network or configuration condition comes back as a classified result; nothing is raised for them. A
configuration that cannot be used never ends a request already under way (one whose state the host passes
back): it stays pending with that state and ``action_required``, and carries on once the configuration is fixed.

Hosts import this module at start-up, so it imports only the framework's models; the HTTP stack
(requests, requests-oauthlib, pyrate-limiter) loads on the first hook call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

from dsr_framework import hookimpl
from dsr_framework.models import ActionRequired, CheckOutcome, ConnectionResult, DsrRequest, Result, utcnow

__all__ = ["call_meter", "handle_access", "handle_cancel", "handle_deletion", "handle_opt_out", "test_connection"]


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
    from connector_mparticle.connector import connected
    from connector_mparticle.errors import (
        ConfigurationError,
        MParticleError,
        RetryLaterError,
        failed_result,
        still_pending,
    )

    if request.type != step and not (step == "access" and request.type == "portability"):  # access serves both
        return failed_result(request, ConfigurationError(f"a {request.type} request cannot go to the {step} hook"))
    held = state if isinstance(state, Mapping) and state and request.type != "opt_out" else None  # opt-outs: none
    with ExitStack() as call:  # the call's deadline runs from here: building a new connector is inside it
        try:
            conn = call.enter_context(connected(config, f"the {request.type} call"))
        except MParticleError as exc:
            if held is None:
                return failed_result(request, exc)
            # a request under way stays pending through trouble that is not mParticle's verdict
            if isinstance(exc, RetryLaterError):
                return still_pending(request, held, exc)
            return _kept(request, held, exc.error_class, exc.message)
        return _advance(conn, request, state, held)


def _advance(conn: Any, request: DsrRequest, state: Mapping[str, Any] | None,
             held: Mapping[str, Any] | None) -> Result:
    """One step of the request; an exception that is not the connector's own (memory or threads ran out, or a
    bug) keeps a request mParticle holds pending with the state it came with, for a person to look at: failing
    it would drop the state the host needs to carry on."""
    from connector_mparticle import flows

    try:
        return flows.run(conn, request, state)  # state is checked there: it comes from outside
    except Exception as exc:
        if held is None:
            raise  # nothing mParticle holds is at stake: the host facade reports it as internal
        # the type only: an exception's message may quote anything
        logging.getLogger(__name__).error("the %s call stopped on an unexpected %s; its state is kept",
                                          request.type, type(exc).__name__)
        problem = (f"the call stopped on an unexpected {type(exc).__name__} (the machine out of memory or "
                   "threads, or a fault in the connector)")
        return _kept(request, held, "internal", problem, "this call could not finish")


#: When a request kept for a configuration fix asks to be called again.
RECHECK = timedelta(minutes=5)


def _kept(request: DsrRequest, state: Mapping[str, Any], kind: Any, problem: str,
          what: str = "the configuration cannot be used") -> Result:
    """A request under way that this call cannot advance (the configuration cannot be used, or the call
    stopped unexpectedly): pending with the state it came with, so nothing mParticle holds is given up."""
    from connector_mparticle.errors import held_pending

    message = f"this {request.type} request is under way (the host passed its state), but {what}: {problem}"
    return held_pending(request, state, message, utcnow() + RECHECK, ActionRequired(kind, (
        f"{problem}; once it is fixed, calling again with this state carries on where the request stopped (nothing "
        "is submitted twice)")))


@hookimpl
def handle_access(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """OpenDSR access or portability: submit, check until complete, download and summarise the results (for
    portability, also normalised JSON and CSV files)."""
    return _run("access", config, request, state)


@hookimpl
def handle_deletion(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """OpenDSR erasure: submit, check until complete, confirm with identity searches."""
    return _run("deletion", config, request, state)


@hookimpl
def handle_opt_out(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """Identity search, then consent state recorded through the Events API."""
    return _run("opt_out", config, request, state)


@hookimpl
def handle_cancel(config: Mapping[str, Any], request: DsrRequest, state: Mapping[str, Any] | None) -> Result:
    """OpenDSR cancel (DELETE /requests/{id}) while mParticle holds the request pending; refused, with why, after."""
    from connector_mparticle import flows
    from connector_mparticle.connector import connector_for
    from connector_mparticle.errors import MParticleError, failed_result

    try:
        conn = connector_for(config)
    except MParticleError as exc:
        return failed_result(request, exc)
    return flows.run_cancel(conn, request, state)


def call_meter(config: Mapping[str, Any]) -> Callable[[], dict[str, int]]:
    """The calls each of mParticle's budgets has let through in this process so far, read from the connector cached
    for ``config`` (not a hook: a backlog's progress shows their rate, for ``mparticle-dsr batch`` and ``worker``)."""
    from connector_mparticle.connector import connector_for

    return connector_for(config).throttle.spent


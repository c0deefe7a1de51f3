"""What each hook does in mParticle, as bounded steps that return a result.

* :mod:`~connector_mparticle.flows.common`: the asynchronous lifecycle access and deletion share;
* :mod:`~connector_mparticle.flows.access`, :mod:`~connector_mparticle.flows.portability`,
  :mod:`~connector_mparticle.flows.deletion`: how each finishes;
* :mod:`~connector_mparticle.flows.opt_out`: synchronous consent update;
* :mod:`~connector_mparticle.flows.cancel`: withdrawing a request while mParticle still holds it pending;
* :mod:`~connector_mparticle.flows.connection`: the connection test;
* :mod:`~connector_mparticle.flows.state`: the resumable state the host stores;
* :mod:`~connector_mparticle.flows.delivery`: what a request delivered into its output folder, vouched for by
  that state, signed.

:func:`run` is the one entry point: it runs a request step under the call's deadline
(``timeouts.total_seconds``).
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.connector import MParticleConnector
from dsr_framework.models import ConnectionResult, DsrRequest, Result
from dsr_framework.outgoing import clean_result

__all__ = ["check_connection", "run", "run_cancel"]


def run(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """One bounded step of ``request`` (access, deletion or opt-out); every text in its result scrubbed."""
    return clean_result(_run(conn, request, state), conn.redactor)


def _run(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    from connector_mparticle.errors import MParticleError, failed_result
    from connector_mparticle.flows.access import finish_access
    from connector_mparticle.flows.common import Flow
    from connector_mparticle.flows.deletion import finish_deletion
    from connector_mparticle.flows.opt_out import opt_out
    from connector_mparticle.flows.outlook import annotate
    from connector_mparticle.flows.portability import finish_portability
    from connector_mparticle.flows.suppression import mark
    from connector_mparticle.http.deadline import bounded

    with bounded(conn.settings.timeouts.total_seconds, f"the {request.type} call"):
        if request.type == "opt_out":
            return opt_out(conn, request, state)
        kind, finish = {"access": ("access", finish_access), "portability": ("portability", finish_portability),
                        "deletion": ("erasure", finish_deletion)}[request.type]
        try:
            flow = Flow(conn, request, state, kind)
        except MParticleError as exc:  # the request names nothing mParticle knows
            return failed_result(request, exc, conn.redactor)
        if kind == "erasure" and conn.settings.erasure.suppress_while_waiting:
            flow.after_submit.append(mark)
        return annotate(flow, flow.run(finish))


def check_connection(conn: MParticleConnector) -> ConnectionResult:
    """The connection test, under the call's deadline."""
    from connector_mparticle.flows.connection import test_connection
    from connector_mparticle.http.deadline import bounded

    with bounded(conn.settings.timeouts.total_seconds, "the connection test"):
        return clean_result(test_connection(conn), conn.redactor)


def run_cancel(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """Withdraw ``request`` (``handle_cancel``), under the call's deadline; every text in its result scrubbed."""
    from connector_mparticle.flows.cancel import cancel as cancel_request
    from connector_mparticle.http.deadline import bounded

    with bounded(conn.settings.timeouts.total_seconds, f"cancelling the {request.type} request"):
        return clean_result(cancel_request(conn, request, state), conn.redactor)

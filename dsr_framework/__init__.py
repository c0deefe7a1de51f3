"""A small, connector-agnostic host framework for data-subject-request (DSR) connectors.

Connector authors implement the hooks in :mod:`dsr_framework.hookspecs` with the :data:`hookimpl` marker,
ship a ``manifest.yaml`` and a credentials JSON Schema in their package, and register an entry point in
the ``dsr.connectors`` group::

    # mypackage/plugin.py
    from dsr_framework import hookimpl, ConnectionResult, CheckOutcome

    @hookimpl
    def test_connection(config):
        return ConnectionResult((CheckOutcome("api", True, "the API accepted the key"),))

    # pyproject.toml
    [project.entry-points."dsr.connectors"]
    myconnector = "mypackage.plugin"

Hosts call connectors through :func:`load_host` and :class:`ConnectorHandle`.
"""

import pluggy

from dsr_framework.models import (
    AuditEvent,
    CheckOutcome,
    ConnectionResult,
    DsrRequest,
    FailureInfo,
    OutputFile,
    Result,
)

#: The marker connector authors decorate their hook implementations with.
hookimpl = pluggy.HookimplMarker("dsr")

__all__ = [
    "AuditEvent",
    "CheckOutcome",
    "ConnectionResult",
    "DsrRequest",
    "FailureInfo",
    "OutputFile",
    "Result",
    "hookimpl",
]

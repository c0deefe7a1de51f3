"""The loopback rule, written once: which hosts are this machine, and where plain ``http`` may go.

Connectors talk ``https`` to their services; plain ``http`` is allowed only to a loopback host (``localhost``,
``127.0.0.0/8``, ``::1``), where a local simulator or sandbox listens. The conformance harness lets a target
listen on :data:`LOOPBACK_HOSTS` by default and refuses loopback as a declared egress host.
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_HOSTS", "LOOPBACK_NAMES", "is_loopback", "transport_allowed"]

#: Host names that always mean this machine (besides loopback IP literals).
LOOPBACK_NAMES = frozenset({"localhost"})
#: The loopback name and addresses a local test service listens on.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_allowed(scheme: str, host: str) -> bool:
    """``https`` to any host, or plain ``http`` to a loopback host; nothing else."""
    return scheme == "https" or (scheme == "http" and is_loopback(host))

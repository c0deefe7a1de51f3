"""The harness's one audit hook (PEP 578), shared by the guards that watch a connector from below the patch level.

CPython raises an audit event inside ``socket.connect``, ``open``, ``os.rename``, ``subprocess.Popen`` and many
more, whoever calls them and however the function was reached (a saved reference, a library, a thread). Audit
hooks cannot be removed, so :func:`install` adds one for the life of the process; it looks the event up in a
table of routes (one dict lookup: the common case costs almost nothing) and hands it to the guard that asked
for it (:mod:`~dsr_framework.conformance.egress` for connections and processes,
:mod:`~dsr_framework.conformance.filewatch` for files). Each guard is inert until a check activates it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Listener", "install", "route"]

Listener = Callable[[str, tuple[Any, ...]], None]

_routes: dict[str, Listener] = {}
_lock = threading.Lock()
_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    listener = _routes.get(event)
    if listener is not None:
        listener(event, args)


def install() -> None:
    """Add the audit hook to this process, once (it stays for the life of the process, inert when idle)."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


def route(events: Iterable[str], listener: Listener) -> None:
    """Send ``events`` to ``listener`` from now on (each guard routes its own events once, at import)."""
    with _lock:
        for event in events:
            _routes[event] = listener

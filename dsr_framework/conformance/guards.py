"""The rules around every hook call: the host process, the objects handed over, and threads left running.

:class:`CallGuard` is taken just before a hook call and judged just after it, in the harness's thread. It
compares the host process's global state (:mod:`~dsr_framework.conformance.hoststate`), the settings and the
request the hook was handed (a hook must not change what it is lent), and the connector's live threads
(:mod:`~dsr_framework.conformance.threads`): a thread the call started and left running is a defect, except a
daemon thread started by the first call with a configuration (a long-lived client, such as a rate limiter's
clock, created once and cached). What changed is put back, so the checks after it start from a sound process.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dsr_framework.conformance import hoststate, threads
from dsr_framework.models import DsrRequest

__all__ = ["THREAD_GRACE_SECONDS", "CallGuard"]

#: How long threads a call started may take to end on their own once it has returned.
THREAD_GRACE_SECONDS = 0.25
#: The threads the harness runs hook calls in (never "left behind" by a call, even by one running alongside).
_CALLERS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@dataclass
class CallGuard:
    """What the process and the objects handed to one hook call looked like before it."""

    config: Mapping[str, Any]
    request: DsrRequest | None
    first_with_config: bool
    package: str | None = None  #: the connector's package: its own loggers are its own to set
    process: hoststate.Snapshot = field(default_factory=hoststate.snapshot)

    def __post_init__(self) -> None:
        self._config = copy.deepcopy(dict(self.config))
        self._request = self.request.to_dict() if self.request is not None else None
        self._threads = threads.alive()
        self._worker: threading.Thread | None = None

    def adopt(self, thread: threading.Thread) -> None:
        """The thread the harness runs the call in: the connector's, but not one it left behind."""
        threads.adopt(thread)
        _CALLERS.add(thread)
        self._worker = thread

    def problems(self) -> list[str]:
        """Every way the call changed what it must not (each put back where it can be)."""
        found = [f"changed the host process's {what}" for what in self.process.changes(own=self.package)]
        if found:
            self.process.restore()
        if dict(self.config) != self._config:
            found.append("changed the settings it was handed (the host's own copy, shared by every call)")
            if isinstance(self.config, dict):
                dict.clear(self.config)
                dict.update(self.config, copy.deepcopy(self._config))
        if self.request is not None and self.request.to_dict() != self._request:
            found.append("changed the request it was handed (its identities)")
        return found + self._threads_left()

    def _started(self) -> list[threading.Thread]:
        """The threads this call started (not those of calls running alongside) that may not outlive it."""
        worker = self._worker
        started = [t for t in threads.alive() - self._threads - set(_CALLERS)
                   if worker is None or threads.descends_from(t, worker)]
        return [t for t in started if not (t.daemon and self.first_with_config)]

    def _threads_left(self) -> list[str]:
        lingering = self._started()
        deadline = time.monotonic() + THREAD_GRACE_SECONDS
        for thread in lingering:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t for t in lingering if t.is_alive()]
        if not left:
            return []
        why = ("a call must not leave work behind it" if all(t.daemon for t in left) else
               "non-daemon: the host cannot even exit while they run")
        names = ", ".join(sorted({t.name for t in left})[:3])
        return [f"left {len(left)} thread(s) running after it returned ({names}; {why})"]

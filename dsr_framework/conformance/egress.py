"""An egress guard below the patch level: Python's audit hooks (PEP 578).

CPython raises an audit event inside ``socket.connect`` (also behind ``connect_ex``), ``getaddrinfo``,
``sendto``, ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.posix_spawn`` and friends, whoever calls
them and however the function was reached (a saved reference, a library, a thread). :func:`install` adds the
harness's one audit hook (:mod:`~dsr_framework.conformance.audit`) for the life of the process, before the
connector is imported so code run at import time is seen too. The hook does nothing with these events unless
an :class:`EgressGuard` is active (one module global, read once per event); an active guard records and blocks
(raises :class:`EgressBlocked`, an ``OSError``) anything outside its allowed hosts, and every process start.

What it cannot see: native extensions that open sockets or start processes in C without going through these
functions, sockets opened before the guard was active, and processes started before it. Real isolation is
an OS sandbox (a network namespace, seccomp, a container without network); this guard is a conformance check,
not a security boundary.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dsr_framework.conformance import audit

__all__ = ["EgressBlocked", "EgressGuard", "install", "paused"]

_SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                            "socket.gethostbyaddr", "socket.getnameinfo"})
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                             "os.fork", "os.forkpty", "pty.spawn", "os.startfile"})
_WATCHED = _SOCKET_EVENTS | _LOOKUP_EVENTS | _PROCESS_EVENTS

_active: EgressGuard | None = None


class EgressBlocked(PermissionError):
    """The conformance harness blocked a connection, lookup or process the connector may not make."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    guard = _active
    if guard is not None:  # the common case: no guard, straight back to CPython
        guard.judge(event, args)


audit.route(_WATCHED, _audit)


def install() -> None:
    """Add the harness's audit hook to this process, once (it stays for the life of the process, inert when idle)."""
    audit.install()


def _host_of(address: Any) -> str | None:
    if isinstance(address, tuple) and address:
        first = address[0]
        return first.decode("ascii", "replace") if isinstance(first, bytes) else str(first)
    return None


def _program(event: str, args: tuple[Any, ...]) -> str:
    """What a process event starts: ``Popen``'s first argument, or the event's first argument."""
    what = args[0] if args else "?"
    if event == "subprocess.Popen" and len(args) > 1 and args[1]:
        what = args[1][0] if isinstance(args[1], (list, tuple)) else args[1]
    return str(what)


@dataclass
class EgressGuard:
    """Records and blocks traffic to any host not in ``allowed``, and any process start.

    ``allowed`` holds host names and IP addresses; an address that an allowed name resolved to while the guard
    was active is allowed too. Loopback is not special: a target listening on 127.0.0.1 lists it.
    """

    allowed: frozenset[str]
    label: str = "the connector"
    violations: list[str] = field(default_factory=list)
    _resolved: set[str] = field(default_factory=set)

    @classmethod
    def allowing(cls, hosts: Iterable[str], label: str = "the connector") -> EgressGuard:
        return cls(frozenset(h.lower().strip("[]") for h in hosts), label)

    def allows(self, host: str) -> bool:
        host = host.lower().strip("[]").split("%")[0]
        if host in self.allowed or host in self._resolved:
            return True
        try:  # "127.0.0.1" allowed also allows "::ffff:127.0.0.1", the same address
            mapped = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
            return str(mapped.ipv4_mapped) in self.allowed
        return False

    def judge(self, event: str, args: tuple[Any, ...]) -> None:
        """Called by the audit hook for a watched event: allow it, or record it and raise."""
        if event in _PROCESS_EVENTS:
            self._refuse(f"started a process ({event}: {_program(event, args)[:80]})")
        elif event in _LOOKUP_EVENTS:
            self._judge_lookup(event, args)
        else:  # a socket event: (socket, address)
            self._judge_socket(event, args[1] if len(args) > 1 else None)

    def _judge_lookup(self, event: str, args: tuple[Any, ...]) -> None:
        host = _host_of(args[0]) if event == "socket.getnameinfo" else args[0] if args else None
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is None:
            return
        if not self.allows(str(host)):
            self._refuse(f"looked up the undeclared host {host} ({event})")
        if event == "socket.getaddrinfo":
            self._resolved_later(str(host))

    def _judge_socket(self, event: str, address: Any) -> None:
        if isinstance(address, (str, bytes)):
            self._refuse(f"connected to a local socket {address!r} ({event})")
        host = _host_of(address)
        if host is not None and not self.allows(host):
            self._refuse(f"contacted the undeclared host {host} ({event})")

    def _resolved_later(self, name: str) -> None:
        # The connect that follows a lookup names an address, not the host: learn the addresses an allowed
        # name stands for, once, resolving it here with the guard paused (so the hook does not recurse).
        if name.lower() in self.allowed and name.lower() not in self._resolved:
            self._resolved.add(name.lower())
            # Unresolvable now: the connector's own lookup fails as well, so there is nothing to learn.
            with paused(), contextlib.suppress(Exception):
                self._resolved.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))

    def _refuse(self, what: str) -> None:
        self.violations.append(what)
        raise EgressBlocked(f"conformance: {self.label} {what}; only the manifest's egress_hosts and the target "
                            "may be contacted, and no process may be started")

    @contextlib.contextmanager
    def active(self) -> Iterator[EgressGuard]:
        """Guard everything this process does (every thread) while the block runs."""
        global _active
        install()
        previous, _active = _active, self
        try:
            yield self
        finally:
            _active = previous


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Let the harness's own trusted code (the target, its oracle) run unguarded for a moment."""
    global _active
    previous, _active = _active, None
    try:
        yield
    finally:
        _active = previous

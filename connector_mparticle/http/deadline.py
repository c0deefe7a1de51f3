"""A wall-clock budget for one hook call, on the monotonic clock, enforced down to the socket.

Read timeouts bound each ``recv``, not a response: a server that sends one byte just under every read
timeout could hold a call for ever. So each hook call runs inside :func:`bounded`, which sets an absolute
deadline for everything the call does (connecting, headers, body, retries, throttle waits, token fetches).
The HTTP layer caps every timeout by the time left and registers each socket it uses with the current
deadline (:meth:`Deadline.watch`); when the deadline passes, a timer shuts those sockets down, so a blocked
read returns at once and the call ends with :class:`~connector_mparticle.errors.OutOfTimeError`. A lock that
another call may hold across a slow exchange (a token fetch, a certificate fetch, a connector being built) is
waited for through :func:`held`, never longer than the waiting call's own deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from connector_mparticle.errors import OutOfTimeError

__all__ = ["Deadline", "bounded", "current", "held"]

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("mparticle_deadline", default=None)
MIN_TIMEOUT = 0.001  #: a socket timeout of 0 would mean non-blocking


class Deadline:
    """An absolute end time on ``time.monotonic()``; shuts down watched sockets when it passes."""

    def __init__(self, seconds: float, what: str = "the call") -> None:
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __repr__(self) -> str:
        return f"Deadline({self.remaining():.3f}s left of {self.seconds:g}s)"

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds``, or the time left if that is sooner (never zero: a zero timeout means non-blocking)."""
        return max(MIN_TIMEOUT, min(seconds, self.remaining()))

    def check(self) -> None:
        """Raise :class:`OutOfTimeError` if the deadline has passed."""
        if self.expired or self.remaining() <= 0:
            raise self.error()

    def error(self) -> OutOfTimeError:
        return OutOfTimeError(f"{self.what} ran out of its time budget ({self.seconds:g}s, timeouts.total_seconds)")

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (at once, if it already has)."""
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def expire(self) -> None:
        """Mark the deadline passed and unblock every watched socket."""
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def start(self) -> None:
        self._timer = threading.Timer(max(0.0, self.remaining()), self.expire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed, or never connected
        sock.shutdown(socket.SHUT_RDWR)


def current() -> Deadline | None:
    """The deadline of the hook call running in this thread, if any."""
    return _current.get()


@contextmanager
def bounded(seconds: float, what: str = "the call") -> Iterator[Deadline]:
    """Run the block under a deadline ``seconds`` from now (or the enclosing one, if that is sooner)."""
    outer = _current.get()
    if outer is not None and outer.remaining() <= seconds:
        yield outer
        return
    deadline = Deadline(seconds, what)
    token = _current.set(deadline)
    deadline.start()
    try:
        yield deadline
    finally:
        deadline.stop()
        _current.reset(token)


@contextmanager
def held(lock: threading.Lock) -> Iterator[None]:
    """Hold ``lock``, waiting for it at most until the current call's deadline (:class:`OutOfTimeError` then;
    outside a hook call, as long as it takes): a call that holds it across a slow exchange holds up the others
    only until their own deadlines."""
    running = current()
    if not lock.acquire(timeout=max(0.0, running.remaining()) if running is not None else -1):
        assert running is not None
        raise running.error()
    try:
        yield
    finally:
        lock.release()

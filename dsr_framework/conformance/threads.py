"""Which threads run the connector's code: the harness's own call threads, and every thread started from one.

The guards that attribute what happens in the process (a file written, a record logged, a thread left
running) must tell the connector apart from the target's own server threads, which run in the same process at
the same time. A thread is the connector's when the harness adopted it (the thread a hook call runs in, the
thread importing the connector) or when a connector thread started it: :func:`install` wraps
``threading.Thread.start`` once, for the life of the process, to learn who started each thread (CPython 3.11
raises no audit event for it). Threads started through ``_thread`` directly are not seen.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator

__all__ = ["adopt", "alive", "as_connector", "descends_from", "install", "is_connector"]

_connector: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_started_by: weakref.WeakKeyDictionary[threading.Thread, threading.Thread] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_installed = False


def is_connector(thread: threading.Thread | None = None) -> bool:
    """True when ``thread`` (default: the current one) runs the connector's code."""
    return (thread or threading.current_thread()) in _connector


def adopt(thread: threading.Thread) -> None:
    """Count ``thread`` (not started yet) as the connector's, with every thread it starts."""
    _connector.add(thread)


def alive() -> set[threading.Thread]:
    """The connector's threads that are still running."""
    return {thread for thread in list(_connector) if thread.is_alive()}


def descends_from(thread: threading.Thread, ancestor: threading.Thread) -> bool:
    """True when ``ancestor`` started ``thread``, or started the thread that did, and so on."""
    seen: set[int] = set()
    current: threading.Thread | None = thread
    while current is not None and id(current) not in seen:
        if current is ancestor:
            return True
        seen.add(id(current))
        current = _started_by.get(current)
    return False


@contextlib.contextmanager
def as_connector() -> Iterator[None]:
    """Count the current thread as the connector's while the block runs (the harness imports it there)."""
    current = threading.current_thread()
    was = current in _connector
    _connector.add(current)
    try:
        yield
    finally:
        if not was:
            _connector.discard(current)


def install() -> None:
    """Wrap ``threading.Thread.start`` once, so a thread a connector thread starts is the connector's too."""
    global _installed
    with _lock:
        if _installed:
            return
        original = threading.Thread.start

        def start(self: threading.Thread) -> None:
            if is_connector():
                _connector.add(self)
                _started_by[self] = threading.current_thread()
            original(self)

        start.__wrapped__ = original  # type: ignore[attr-defined]
        threading.Thread.start = start  # type: ignore[method-assign]
        _installed = True
